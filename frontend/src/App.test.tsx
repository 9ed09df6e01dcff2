// The page against a real todo-api (one fresh process per test, so each starts empty).
import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { App } from "./App";
import { ApiError, TodoClient } from "./api";
import { ErrorBanner } from "./ErrorBanner";
import { startTodoApi, type RunningApi } from "./testing/todoApi";

let api: RunningApi;
let client: TodoClient;
beforeEach(async () => {
  api = await startTodoApi();
  client = new TodoClient(`${api.url}/api`);
});
afterEach(async () => {
  cleanup();
  await api?.stop();
});

const row = (text: string) => screen.getByText(text, { exact: true }).closest("li")!;
const shownTexts = () => screen.queryAllByRole("listitem").map((li) => li.querySelector(".text")?.textContent);

describe("App", () => {
  it("lists what the API holds, and creates through the form", async () => {
    await client.create("seeded");
    const user = userEvent.setup();
    render(<App client={client} />);
    await screen.findByText("seeded");
    expect(screen.getByRole("button", { name: "Add" })).toHaveProperty("disabled", true);

    await user.type(screen.getByLabelText("New todo"), "typed in the form");
    await user.click(screen.getByRole("button", { name: "Add" }));
    await screen.findByText("typed in the form");
    expect(screen.getByLabelText("New todo")).toHaveProperty("value", "");
    expect(screen.getByText("2 shown of 2 todos")).toBeTruthy();
    expect((await client.list()).todos.map((t) => t.text)).toEqual(["seeded", "typed in the form"]);
  });

  it("toggles, and the completed filter asks the API for the matching todos", async () => {
    await client.create("one");
    await client.create("two");
    const user = userEvent.setup();
    render(<App client={client} />);
    await screen.findByText("two");
    await user.click(within(row("two")).getByRole("checkbox"));
    await waitFor(() => expect(row("two").className).toContain("done"));

    await user.click(screen.getByRole("button", { name: "Completed" }));
    await screen.findByText("1 shown of 1 completed todos");
    expect(shownTexts()).toEqual(["two"]);
    expect(screen.getByRole("button", { name: "Completed" }).getAttribute("aria-pressed")).toBe("true");

    await user.click(screen.getByRole("button", { name: "Active" }));
    await screen.findByText("1 shown of 1 active todos");
    expect(shownTexts()).toEqual(["one"]);
  });

  it("renames inline; Escape cancels without a call", async () => {
    const t = await client.create("old name");
    const user = userEvent.setup();
    render(<App client={client} />);
    await screen.findByText("old name");

    await user.click(screen.getByRole("button", { name: 'Rename "old name"' }));
    await user.keyboard("{Escape}");
    expect(screen.getByText("old name")).toBeTruthy();

    await user.click(screen.getByRole("button", { name: 'Rename "old name"' }));
    const input = screen.getByLabelText('New text for "old name"');
    await user.clear(input);
    await user.type(input, "new name{Enter}");
    await screen.findByText("new name");
    expect((await client.list()).todos).toMatchObject([{ id: t.id, text: "new name" }]);
  });

  it("shows the API's error when it refuses a rename, and keeps the editor open", async () => {
    await client.create("keep me");
    const user = userEvent.setup();
    render(<App client={client} />);
    await screen.findByText("keep me");
    await user.click(screen.getByRole("button", { name: 'Rename "keep me"' }));
    await user.clear(screen.getByLabelText('New text for "keep me"'));
    await user.type(screen.getByLabelText('New text for "keep me"'), "   {Enter}");

    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("validation_error");
    expect(alert.textContent).toContain("text must not be empty");
    expect(alert.textContent).toContain("HTTP 400");
    expect(screen.getByLabelText('New text for "keep me"')).toBeTruthy();
    expect((await client.list()).todos[0].text).toBe("keep me");

    await user.click(screen.getByRole("button", { name: "Dismiss error" }));
    expect(screen.queryByRole("alert")).toBeNull();
  });

  it("deletes, and shows not_found when the todo is already gone", async () => {
    const a = await client.create("gone elsewhere");
    await client.create("stays");
    const user = userEvent.setup();
    render(<App client={client} />);
    await screen.findByText("stays");

    await client.remove(a.id); // another tab deleted it
    await user.click(screen.getByRole("button", { name: 'Delete "gone elsewhere"' }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("not_found");
    expect(alert.textContent).toContain("HTTP 404");

    await user.click(screen.getByRole("button", { name: 'Delete "stays"' }));
    await screen.findByText("Nothing here.");
    expect((await client.list()).total).toBe(0);
  });

  it("says when the API cannot be reached at all", async () => {
    await api.stop();
    render(<App client={client} />);
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("network_error");
    expect(alert.textContent).toContain("no answer");
  });
});

describe("ErrorBanner", () => {
  it("shows code, message and status", () => {
    render(<ErrorBanner error={new ApiError(507, "store_full", "store is full")} onDismiss={() => {}} />);
    const alert = screen.getByRole("alert");
    expect(within(alert).getByText("store_full").tagName).toBe("CODE");
    expect(alert.textContent).toContain("store is full");
    expect(alert.textContent).toContain("HTTP 507");
  });
});

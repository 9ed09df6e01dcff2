import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiError, TodoClient, errorFrom } from "./api";
import { startTodoApi, type RunningApi } from "./testing/todoApi";

let api: RunningApi;
let client: TodoClient;
beforeAll(async () => {
  api = await startTodoApi();
  client = new TodoClient(`${api.url}/api`);
});
afterAll(() => api?.stop());

async function rejection(p: Promise<unknown>): Promise<ApiError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ApiError);
  return e as ApiError;
}

describe("TodoClient against the real todo-api", () => {
  it("creates, lists with the completed filter, renames, toggles and deletes", async () => {
    const a = await client.create("  first  ");
    expect(a.text).toBe("first"); // the API trims
    const b = await client.create("second");
    expect(await client.setCompleted(b.id, true)).toMatchObject({ id: b.id, completed: true });
    expect(await client.rename(a.id, "first, renamed")).toMatchObject({ text: "first, renamed" });

    const all = await client.list("all");
    expect(all.todos.map((t) => t.id)).toEqual([a.id, b.id]);
    expect(all.total).toBe(2);
    expect((await client.list("completed")).todos.map((t) => t.id)).toEqual([b.id]);
    expect((await client.list("active")).todos.map((t) => t.id)).toEqual([a.id]);

    await client.remove(a.id);
    const after = await client.list("all");
    expect(after.todos.map((t) => t.id)).toEqual([b.id]);
    await client.remove(b.id);
  });

  it("total is the X-Total-Count of the filter, beyond the page limit", async () => {
    const ids = [];
    for (const t of ["p1", "p2", "p3"]) ids.push((await client.create(t)).id);
    const page = await client.list("all", 2);
    expect(page.todos).toHaveLength(2);
    expect(page.total).toBe(3);
    for (const id of ids) await client.remove(id);
  });

  it("carries the API's error shape: validation_error on empty text", async () => {
    const e = await rejection(client.create("   "));
    expect(e).toMatchObject({ status: 400, code: "validation_error" });
    expect(e.message).toMatch(/empty/);
  });

  it("carries the API's error shape: not_found on a missing id", async () => {
    const e = await rejection(client.remove(987654));
    expect(e).toMatchObject({ status: 404, code: "not_found" });
  });

  it("carries the API's error shape: invalid_query on a limit out of range", async () => {
    const e = await rejection(client.list("all", 0));
    expect(e.status).toBe(400);
    expect(e.code).toMatch(/validation_error|invalid_query/);
  });

  it("maps a refused connection to network_error (status 0)", async () => {
    const closed = await startTodoApi();
    await closed.stop();
    const e = await rejection(new TodoClient(`${closed.url}/api`).list());
    expect(e).toMatchObject({ status: 0, code: "network_error" });
  });
});

describe("errorFrom", () => {
  it("keeps the API's code and message", async () => {
    const res = new Response(JSON.stringify({ error: "store_full", message: "store is full" }), {
      status: 507,
    });
    expect(await errorFrom(res)).toMatchObject({ status: 507, code: "store_full", message: "store is full" });
  });

  it("maps a non-JSON answer (a proxy's HTML page) to http_<status> with the text", async () => {
    const res = new Response("<html><body>502 Bad Gateway</body></html>", { status: 502 });
    const e = await errorFrom(res);
    expect(e).toMatchObject({ status: 502, code: "http_502" });
    expect(e.message).toContain("502 Bad Gateway");
  });

  it("maps JSON without an error code, and an empty body, to http_<status>", async () => {
    expect(await errorFrom(new Response('{"x":1}', { status: 500 }))).toMatchObject({ code: "http_500" });
    const empty = await errorFrom(new Response("", { status: 503, statusText: "Service Unavailable" }));
    expect(empty).toMatchObject({ code: "http_503", message: "Service Unavailable" });
  });
});

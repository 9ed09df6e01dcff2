// The todo-api client: the five calls the UI makes, and one error type carrying the API's
// error shape `{"error": <code>, "message": <text>}` (target-app/README.md). Answers that are not
// in that shape (an nginx 502 page, a dropped connection) are mapped onto it too, so the UI has
// exactly one way to show a failure.

export interface Todo {
  id: number;
  text: string;
  completed: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface TodoPage {
  todos: Todo[];
  /** `X-Total-Count`: how many todos match the filter (the page holds at most `limit`). */
  total: number;
}

export type Filter = "all" | "active" | "completed";

export class ApiError extends Error {
  /** HTTP status; 0 when no answer arrived at all. */
  readonly status: number;
  /** The API's `error` code (`validation_error`, `not_found`, …) or one of ours. */
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/** Reads an error answer: the API's own shape when it is there, else a stand-in code. */
export async function errorFrom(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => "");
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body === "object" && body !== null) {
      const { error, message } = body as Record<string, unknown>;
      if (typeof error === "string") {
        return new ApiError(res.status, error, typeof message === "string" ? message : "");
      }
    }
  } catch {
    // Not JSON (a proxy's HTML page): fall through.
  }
  const detail = text.trim().slice(0, 200) || res.statusText || "no details";
  return new ApiError(res.status, `http_${res.status}`, detail);
}

export class TodoClient {
  constructor(private readonly base: string = "/api") {}

  private async call(method: string, path: string, body?: unknown): Promise<Response> {
    const init: RequestInit = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers = { ...init.headers, "Content-Type": "application/json" };
      init.body = JSON.stringify(body);
    }
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, init);
    } catch (e) {
      throw new ApiError(0, "network_error", e instanceof Error ? e.message : String(e));
    }
    if (!res.ok) throw await errorFrom(res);
    return res;
  }

  async list(filter: Filter = "all", limit = 100): Promise<TodoPage> {
    const q = new URLSearchParams({ limit: String(limit) });
    if (filter !== "all") q.set("completed", String(filter === "completed"));
    const res = await this.call("GET", `/todos?${q}`);
    const todos = (await res.json()) as Todo[];
    const total = Number(res.headers.get("X-Total-Count") ?? todos.length);
    return { todos, total: Number.isFinite(total) ? total : todos.length };
  }

  async create(text: string): Promise<Todo> {
    return (await this.call("POST", "/todos", { text })).json();
  }

  async rename(id: number, text: string): Promise<Todo> {
    return (await this.call("PATCH", `/todos/${id}`, { text })).json();
  }

  async setCompleted(id: number, completed: boolean): Promise<Todo> {
    return (await this.call("PATCH", `/todos/${id}`, { completed })).json();
  }

  async remove(id: number): Promise<void> {
    await this.call("DELETE", `/todos/${id}`);
  }
}

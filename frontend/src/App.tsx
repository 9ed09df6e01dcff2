// The todo page: a create form, the completed filter (all / active / completed), the list, and
// the last API error. After every change the list is read again from the API, so what is shown
// is what the todo-api holds under the current filter.
import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { ApiError, type Filter, type Todo, TodoClient } from "./api";
import { ErrorBanner } from "./ErrorBanner";
import { TodoItem } from "./TodoItem";

const FILTERS: { value: Filter; label: string }[] = [
  { value: "all", label: "All" },
  { value: "active", label: "Active" },
  { value: "completed", label: "Completed" },
];

function asApiError(e: unknown): ApiError {
  return e instanceof ApiError ? e : new ApiError(0, "client_error", String(e));
}

// One client for the page's lifetime: a new one per render would re-run the load effect forever.
const defaultClient = new TodoClient();

export function App({ client = defaultClient }: { client?: TodoClient }) {
  const [filter, setFilter] = useState<Filter>("all");
  const [todos, setTodos] = useState<Todo[]>([]);
  const [total, setTotal] = useState(0);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [draft, setDraft] = useState("");
  // Only the newest list answer is shown (a slow older one must not overwrite it).
  const seq = useRef(0);

  const load = useCallback(
    async (f: Filter) => {
      const mine = ++seq.current;
      try {
        const page = await client.list(f);
        if (mine !== seq.current) return;
        setTodos(page.todos);
        setTotal(page.total);
        setLoaded(true);
      } catch (e) {
        if (mine === seq.current) setError(asApiError(e));
      }
    },
    [client],
  );

  useEffect(() => {
    void load(filter);
  }, [filter, load]);

  /** Runs one change, shows its error if any, then reloads; true when it succeeded. */
  async function change(action: () => Promise<unknown>): Promise<boolean> {
    try {
      await action();
      setError(null);
      await load(filter);
      return true;
    } catch (e) {
      setError(asApiError(e));
      return false;
    }
  }

  async function create(e: FormEvent) {
    e.preventDefault();
    if (await change(() => client.create(draft))) setDraft("");
  }

  return (
    <main className="app">
      <h1>tp2devops todos</h1>
      <form className="create" onSubmit={create}>
        <input
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          placeholder="What needs to be done?"
          aria-label="New todo"
        />
        <button type="submit" disabled={draft === ""}>
          Add
        </button>
      </form>
      <nav className="filters" aria-label="Filter">
        {FILTERS.map((f) => (
          <button
            key={f.value}
            type="button"
            aria-pressed={filter === f.value}
            onClick={() => setFilter(f.value)}
          >
            {f.label}
          </button>
        ))}
      </nav>
      {error && <ErrorBanner error={error} onDismiss={() => setError(null)} />}
      {loaded && todos.length === 0 && <p className="empty">Nothing here.</p>}
      <ul className="todos">
        {todos.map((t) => (
          <TodoItem
            key={t.id}
            todo={t}
            onToggle={(todo) => void change(() => client.setCompleted(todo.id, !todo.completed))}
            onRename={(todo, text) => change(() => client.rename(todo.id, text))}
            onDelete={(todo) => void change(() => client.remove(todo.id))}
          />
        ))}
      </ul>
      <p className="count" aria-live="polite">
        {loaded ? `${todos.length} shown of ${total} ${filter === "all" ? "" : `${filter} `}todos` : "Loading…"}
      </p>
    </main>
  );
}

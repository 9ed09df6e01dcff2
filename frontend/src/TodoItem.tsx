// One todo row: toggle, inline rename (Enter saves, Escape cancels), delete.
import { useState, type FormEvent } from "react";
import type { Todo } from "./api";

export interface TodoItemProps {
  todo: Todo;
  onToggle: (todo: Todo) => void;
  onRename: (todo: Todo, text: string) => Promise<boolean>;
  onDelete: (todo: Todo) => void;
}

export function TodoItem({ todo, onToggle, onRename, onDelete }: TodoItemProps) {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(todo.text);

  async function save(e: FormEvent) {
    e.preventDefault();
    // The API trims and validates; the UI sends what was typed and shows the API's verdict.
    if (await onRename(todo, draft)) setEditing(false);
  }

  return (
    <li className={todo.completed ? "todo done" : "todo"} data-todo-id={todo.id}>
      <input
        type="checkbox"
        checked={todo.completed}
        onChange={() => onToggle(todo)}
        aria-label={`Mark "${todo.text}" ${todo.completed ? "not done" : "done"}`}
      />
      {editing ? (
        <form className="rename" onSubmit={save}>
          <input
            autoFocus
            value={draft}
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === "Escape") {
                setDraft(todo.text);
                setEditing(false);
              }
            }}
            aria-label={`New text for "${todo.text}"`}
          />
          <button type="submit">Save</button>
          <button
            type="button"
            onClick={() => {
              setDraft(todo.text);
              setEditing(false);
            }}
          >
            Cancel
          </button>
        </form>
      ) : (
        <>
          <span className="text">{todo.text}</span>
          <button
            type="button"
            onClick={() => {
              setDraft(todo.text);
              setEditing(true);
            }}
            aria-label={`Rename "${todo.text}"`}
          >
            Rename
          </button>
        </>
      )}
      <button
        type="button"
        className="delete"
        onClick={() => onDelete(todo)}
        aria-label={`Delete "${todo.text}"`}
      >
        Delete
      </button>
    </li>
  );
}

// Shows one API failure in the todo-api's own terms: its error code, its message, the status.
import type { ApiError } from "./api";

export function ErrorBanner({ error, onDismiss }: { error: ApiError; onDismiss: () => void }) {
  return (
    <div className="error" role="alert">
      <code className="error-code">{error.code}</code>
      <span className="error-message">{error.message || "(no message)"}</span>
      <span className="error-status">{error.status ? `HTTP ${error.status}` : "no answer"}</span>
      <button type="button" onClick={onDismiss} aria-label="Dismiss error">
        ×
      </button>
    </div>
  );
}

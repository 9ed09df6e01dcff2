// Entry point: tracing first (so the first API call is already traced), then the UI.
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { readConfig } from "./config";
import { startTracing } from "./tracing";
import "./styles.css";

startTracing(readConfig());

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);

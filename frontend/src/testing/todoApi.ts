// Test helper: a real todo-api process (TODO_API_BIN, built by `cargo build -p todo-api`) on an
// ephemeral loopback port, so the client and the components are tested against the real API,
// its real validation and its real error shape. Missing binary = the test fails, never skips.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";

export interface RunningApi {
  url: string;
  stop: () => Promise<void>;
}

export async function startTodoApi(): Promise<RunningApi> {
  const bin = process.env.TODO_API_BIN;
  if (!bin || !existsSync(bin)) {
    throw new Error(
      `TODO_API_BIN must name a built todo-api (cargo build -p todo-api), got ${bin ?? "nothing"}`,
    );
  }
  const child: ChildProcess = spawn(bin, [], {
    env: {
      ...process.env,
      HOST: "127.0.0.1",
      PORT: "0",
      LOG: "off",
      OTEL_EXPORTER_OTLP_ENDPOINT: "",
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  // Settles once, whenever the process ends (before or after stop() is called, any number of times).
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let stderr = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`todo-api did not start: ${stderr}`)), 10_000);
    child.stderr!.on("data", (d) => {
      stderr += d;
      const m = stderr.match(/listening on (http:\/\/[0-9.:]+)\r?\n/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`todo-api exited (${code}): ${stderr}`));
    });
  });
  return {
    url,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

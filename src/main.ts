/**
 * refsync command line: `pair` (source + destination in one process), `source`,
 * `dest`, `promote`, `verify`.
 *
 * @module
 */
import { parseSourceArgs, UsageError, wantsHelp } from "./cli/args.ts";
import { USAGE } from "./cli/usage.ts";
import { startSource } from "./edge-source/server.ts";

/** Prints one machine-readable event line (tests and scripts read these). */
function event(fields: Record<string, unknown>): void {
  console.log(JSON.stringify(fields));
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command === undefined || command === "help" || wantsHelp(argv)) {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  switch (command) {
    case "source": {
      const config = parseSourceArgs(args);
      const source = await startSource(config);
      event({ event: "listening", role: "source", url: source.url, port: source.port });
      await untilSignal();
      await source.close();
      return 0;
    }
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

/** Resolves on SIGINT or SIGTERM (graceful stop). */
function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
      resolve();
    };
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
  });
}

if (import.meta.main) {
  try {
    Deno.exitCode = await main(Deno.args);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`refsync: ${e.message}\n\n${USAGE}`);
      Deno.exitCode = 2;
    } else {
      console.error("refsync:", e instanceof Error ? e.message : e);
      Deno.exitCode = 1;
    }
  }
}

/**
 * refsync command line: `pair` (source + destination in one process), `source`,
 * `dest`, `promote`, `verify`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  DEFAULTS,
  parseDestArgs,
  parsePromoteArgs,
  parseSourceArgs,
  UsageError,
  wantsHelp,
} from "./cli/args.ts";
import { USAGE } from "./cli/usage.ts";
import { authHeader, storedToken } from "./protocol/auth/mod.ts";
import { startDest } from "./edge-dest/server.ts";
import { startSource } from "./edge-source/server.ts";
import { verifyVolume } from "./storage/verify.ts";

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
      // A standalone source has a pair token too: its admin calls need it.
      const token = config.token ?? await storedToken(config.data);
      const source = await startSource({ ...config, token });
      event({ event: "listening", role: "source", url: source.url, port: source.port });
      await untilSignal();
      await source.close();
      return 0;
    }
    case "dest": {
      const config = parseDestArgs(args);
      const token = config.token ?? await storedToken(config.data);
      const dest = await startDest({ ...config, token });
      event({ event: "listening", role: "destination", url: dest.url, port: dest.port, token });
      await untilSignal();
      await dest.close();
      return 0;
    }
    case "pair":
      return await pair(args);
    case "promote": {
      const { url, token } = parsePromoteArgs(args);
      const res = await fetch(new URL("/v1/admin/promote", url), {
        method: "POST",
        headers: authHeader(token),
      });
      console.log(await res.text());
      return res.ok ? 0 : 1;
    }
    case "verify": {
      const { values } = parseArgs({ args, options: { data: { type: "string" } } });
      if (!values.data) throw new UsageError("verify needs --data DIR");
      const report = await verifyVolume(values.data);
      console.log(JSON.stringify(report, null, 2));
      return report.ok ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

/** The embedded default: a destination and a source in one process. */
async function pair(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      data: { type: "string" },
      "source-port": { type: "string" },
      "dest-port": { type: "string" },
      token: { type: "string" },
      "cp-interval": { type: "string" },
      "cp-dirty-bytes": { type: "string" },
      "max-object-bytes": { type: "string" },
      "body-idle-timeout": { type: "string" },
      "cp-sync": { type: "string" },
    },
  });
  const data = values.data ?? "./data";
  const token = values.token ?? Deno.env.get("REFSYNC_TOKEN") ?? await storedToken(`${data}/dest`);
  const shared =
    (["cp-interval", "cp-dirty-bytes", "max-object-bytes", "body-idle-timeout"] as const)
      .flatMap((k) => values[k] === undefined ? [] : [`--${k}`, values[k]!]);
  const destConfig = parseDestArgs([
    "--port",
    values["dest-port"] ?? String(DEFAULTS.destPort),
    "--data",
    `${data}/dest`,
    ...shared,
  ]);
  const dest = await startDest({ ...destConfig, token });
  const source = await startSource({
    ...parseSourceArgs([
      "--port",
      values["source-port"] ?? String(DEFAULTS.sourcePort),
      "--data",
      `${data}/source`,
      "--dest",
      dest.url,
      "--token",
      token,
      ...(values["cp-sync"] ? ["--cp-sync", values["cp-sync"]] : []),
      ...shared,
    ]),
    token,
  });
  event({ event: "listening", role: "destination", url: dest.url, port: dest.port });
  event({ event: "listening", role: "source", url: source.url, port: source.port, token });
  console.error(
    `refsync pair: source ${source.url} (writes), destination ${dest.url} (reads), data under ${data}\n` +
      `pair token: ${token}\n` +
      `try: curl -T FILE ${source.url}/v1/objects/a && curl ${source.url}/v1/objects/a`,
  );
  await untilSignal();
  await source.close();
  await dest.close();
  return 0;
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

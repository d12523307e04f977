/**
 * refsync command line: `pair` (source + destination in one process), `source`,
 * `dest`, `promote`, `verify`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { DEFAULTS, parseDestArgs, parseSourceArgs, UsageError, wantsHelp } from "./cli/args.ts";
import { USAGE } from "./cli/usage.ts";
import { authHeader, storedToken } from "./protocol/auth/mod.ts";
import { startDest } from "./edge-dest/server.ts";
import { startSource } from "./edge-source/server.ts";
import { CREDENTIALS_FILE, s3Credentials } from "./s3/credentials.ts";
import type { ApplianceS3 } from "./s3/server.ts";
import { verifyVolume } from "./storage/verify.ts";

/** Prints one machine-readable event line (tests and scripts read these). */
function event(fields: Record<string, unknown>): void {
  console.log(JSON.stringify(fields));
}

/** The S3 fields of a listening event; generated credentials are printed once, on stderr. */
function s3Fields(s3: ApplianceS3 | null, dataDir: string): Record<string, unknown> {
  if (s3 === null) return {};
  if (s3.generated) {
    console.error(
      `refsync: S3 credentials generated and kept in ${dataDir}/${CREDENTIALS_FILE}: ` +
        `access key ${s3.credentials.accessKey} secret key ${s3.credentials.secretKey}`,
    );
  }
  return { s3Url: s3.url, s3Port: s3.port };
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
      event({
        event: "listening",
        role: "source",
        url: source.url,
        port: source.port,
        ...s3Fields(source.s3, config.data),
      });
      await untilSignal();
      await source.close();
      return 0;
    }
    case "dest": {
      const config = parseDestArgs(args);
      const token = config.token ?? await storedToken(config.data);
      const dest = await startDest({ ...config, token });
      event({
        event: "listening",
        role: "destination",
        url: dest.url,
        port: dest.port,
        token,
        ...s3Fields(dest.s3, config.data),
      });
      await untilSignal();
      await dest.close();
      return 0;
    }
    case "pair":
      return await pair(args);
    case "promote": {
      const { values } = parseArgs({
        args,
        options: { url: { type: "string" }, token: { type: "string" } },
      });
      if (!values.url) throw new UsageError("promote needs --url of the destination");
      const token = values.token ?? Deno.env.get("REFSYNC_TOKEN") ?? "";
      const res = await fetch(new URL("/v1/admin/promote", values.url), {
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
      "cp-sync": { type: "string" },
      "source-s3-port": { type: "string" },
      "dest-s3-port": { type: "string" },
      "s3-access-key": { type: "string" },
      "s3-secret-key": { type: "string" },
    },
  });
  const data = values.data ?? "./data";
  const token = values.token ?? Deno.env.get("REFSYNC_TOKEN") ?? await storedToken(`${data}/dest`);
  const shared = (["cp-interval", "cp-dirty-bytes", "max-object-bytes"] as const)
    .flatMap((k) => values[k] === undefined ? [] : [`--${k}`, values[k]!]);
  // One pair, one set of S3 credentials: given, or kept with the source.
  const { credentials: s3, generated } = await s3Credentials(`${data}/source`, {
    accessKey: values["s3-access-key"] || Deno.env.get("REFSYNC_S3_ACCESS_KEY") || null,
    secretKey: values["s3-secret-key"] || Deno.env.get("REFSYNC_S3_SECRET_KEY") || null,
  });
  shared.push("--s3-access-key", s3.accessKey, "--s3-secret-key", s3.secretKey);
  const destConfig = parseDestArgs([
    "--s3-port",
    values["dest-s3-port"] ?? String(DEFAULTS.destS3Port),
    "--port",
    values["dest-port"] ?? String(DEFAULTS.destPort),
    "--data",
    `${data}/dest`,
    ...shared,
  ]);
  const dest = await startDest({ ...destConfig, token });
  const source = await startSource(parseSourceArgs([
    "--port",
    values["source-port"] ?? String(DEFAULTS.sourcePort),
    "--s3-port",
    values["source-s3-port"] ?? String(DEFAULTS.sourceS3Port),
    "--data",
    `${data}/source`,
    "--dest",
    dest.url,
    "--token",
    token,
    ...(values["cp-sync"] ? ["--cp-sync", values["cp-sync"]] : []),
    ...shared,
  ]));
  event({
    event: "listening",
    role: "destination",
    url: dest.url,
    port: dest.port,
    ...s3Fields(dest.s3, `${data}/dest`),
  });
  event({
    event: "listening",
    role: "source",
    url: source.url,
    port: source.port,
    token,
    ...s3Fields(source.s3, `${data}/source`),
  });
  console.error(
    `refsync pair: source ${source.url} (writes), destination ${dest.url} (reads), data under ${data}\n` +
      `pair token: ${token}\n` +
      `S3: source ${source.s3?.url} (reads, writes), destination ${dest.s3?.url} (reads); ` +
      `access key ${s3.accessKey}` +
      (generated
        ? ` secret key ${s3.secretKey} (generated, kept in ${data}/source/${CREDENTIALS_FILE})`
        : "") +
      "\n" +
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

/**
 * refsync command line: `pair` (source + destination in one process), `source`,
 * `dest`, `promote`, `verify`.
 *
 * @module
 */
import {
  parseDestArgs,
  parsePairArgs,
  parsePromoteArgs,
  parseSourceArgs,
  parseVerifyArgs,
  UsageError,
  wantsHelp,
} from "./cli/args.ts";
import { USAGE } from "./cli/usage.ts";
import { createLogger, type LogLevel, rootLogger, setRootLogger } from "./logging/mod.ts";
import { authHeader } from "./protocol/auth/mod.ts";
import { startDest } from "./edge-dest/server.ts";
import { type SourceHandle, startSource } from "./edge-source/server.ts";
import { CREDENTIALS_FILE, s3Credentials } from "./s3/credentials.ts";
import type { ApplianceS3 } from "./s3/server.ts";
import { verifyDataDir } from "./storage/verify.ts";

/**
 * Prints the machine-readable `listening` line on stdout (tests and scripts
 * read it), with the pair token and the S3 credentials only when this start
 * generated them: they are shown once, then only kept in the data directory.
 */
function listening(
  role: string,
  at: { url: string; port: number; s3: ApplianceS3 | null; logStreamPort?: number | null },
  newToken: string | null,
  dataDir: string,
  newS3: ApplianceS3["credentials"] | null = at.s3?.generated ? at.s3.credentials : null,
) {
  const token = newToken === null ? {} : { token: newToken };
  const s3 = at.s3 === null ? {} : { s3Url: at.s3.url, s3Port: at.s3.port };
  const stream = typeof at.logStreamPort === "number" ? { logStreamPort: at.logStreamPort } : {};
  const keys = newS3 === null ? {} : { s3AccessKey: newS3.accessKey, s3SecretKey: newS3.secretKey };
  if (newS3 !== null) {
    rootLogger().info("s3.credentials_generated", { path: `${dataDir}/${CREDENTIALS_FILE}` });
  }
  console.log(JSON.stringify({
    event: "listening",
    role,
    url: at.url,
    port: at.port,
    ...token,
    ...stream,
    ...s3,
    ...keys,
  }));
}

/** Sets the process-wide logger: JSON lines on stderr at `level` and above. */
function startLogging(level: LogLevel): void {
  setRootLogger(createLogger({ level }));
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command === undefined) throw new UsageError("give a command");
  if (command === "help" || wantsHelp(argv)) {
    console.log(USAGE);
    return 0;
  }
  switch (command) {
    case "source": {
      const config = parseSourceArgs(args);
      startLogging(config.logLevel);
      const source = await startSource(config);
      listening("source", source, source.tokenGenerated ? source.token : null, config.data);
      await untilSignal();
      await source.close();
      return 0;
    }
    case "dest": {
      const config = parseDestArgs(args);
      startLogging(config.logLevel);
      const dest = await startDest(config);
      listening("destination", dest, dest.tokenGenerated ? dest.token : null, config.data);
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
      const report = await verifyDataDir(parseVerifyArgs(args).data);
      console.log(JSON.stringify(report, null, 2));
      return report.ok ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

/** The embedded default: a destination and a source in one process. */
async function pair(args: string[]): Promise<number> {
  const config = parsePairArgs(args);
  startLogging(config.source.logLevel);
  // One pair, one set of S3 credentials: given, or kept with the source.
  const { credentials, generated } = await s3Credentials(`${config.data}/source`, config.source.s3);
  const keys = { accessKey: credentials.accessKey, secretKey: credentials.secretKey };
  const dest = await startDest({ ...config.dest, s3: { ...config.dest.s3, ...keys } });
  let source: SourceHandle;
  try {
    source = await startSource({
      ...config.source,
      dest: dest.url,
      token: dest.token,
      s3: { ...config.source.s3, ...keys },
    });
  } catch (e) {
    await dest.close();
    throw e;
  }
  rootLogger().info("pair.ready", {
    source: source.url,
    destination: dest.url,
    s3: { source: source.s3?.url ?? null, destination: dest.s3?.url ?? null },
    data: config.data,
    try: `curl -T FILE ${source.url}/v1/objects/a && curl ${source.url}/v1/objects/a`,
  });
  listening("destination", dest, null, config.dest.data);
  listening(
    "source",
    source,
    dest.tokenGenerated ? dest.token : null,
    config.source.data,
    generated ? credentials : null,
  );
  await untilSignal();
  await source.close();
  await dest.close();
  return 0;
}

/** Resolves on SIGINT or SIGTERM (graceful stop), and logs which one came. */
function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const listeners = (["SIGINT", "SIGTERM"] as const).map((signal) => {
      const stop = () => {
        for (const [s, l] of listeners) Deno.removeSignalListener(s, l);
        rootLogger().info("appliance.stopping", { signal });
        resolve();
      };
      return [signal, stop] as const;
    });
    for (const [s, l] of listeners) Deno.addSignalListener(s, l);
  });
}

/** node:util parseArgs rejects an unknown or malformed flag with one of these codes. */
function isFlagError(e: unknown): boolean {
  return e instanceof Error && "code" in e && String(e.code).startsWith("ERR_PARSE_ARGS");
}

if (import.meta.main) {
  try {
    Deno.exitCode = await main(Deno.args);
  } catch (e) {
    if (e instanceof UsageError || isFlagError(e)) {
      console.error(`refsync: ${(e as Error).message}\n\n${USAGE}`);
      Deno.exitCode = 2;
    } else {
      console.error("refsync:", e instanceof Error ? e.message : e);
      Deno.exitCode = 1;
    }
  }
}

/**
 * Helpers of the S3 tests: a pair with the S3 face on both sides, the real S3
 * clients of this machine (aws-cli 1 and 2, rclone, s3cmd, boto3) run as
 * processes with their configuration in a temp directory (never $HOME), each
 * bounded in time, and detection of which clients are installed.
 *
 * @module
 */
import { S3Client } from "@aws-sdk/client-s3";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { type Pair, spawnPair } from "../mirror/pair.ts";

/** The credentials every S3 test pair takes. */
export const CREDS = {
  accessKey: "RSTESTACCESSKEY00001",
  secretKey: "test-secret-key/0123456789abcdefghijkl",
};

/** An SDK client of `endpoint` (path-style, no retries) with `creds`. */
export function sdkClient(
  endpoint: string,
  creds: { accessKey: string; secretKey: string } = CREDS,
): S3Client {
  return new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: creds.accessKey, secretAccessKey: creds.secretKey },
    maxAttempts: 1,
  });
}

/** Signs a raw request with the SDK's signer (the payload hash as given in x-amz-content-sha256). */
export async function signed(
  url: string,
  method: string,
  headers: Record<string, string>,
): Promise<Headers> {
  const u = new URL(url);
  const signer = new SignatureV4({
    credentials: { accessKeyId: CREDS.accessKey, secretAccessKey: CREDS.secretKey },
    region: "us-east-1",
    service: "s3",
    sha256: Hash.bind(null, "sha256"),
    uriEscapePath: false,
  });
  const req = await signer.sign({
    method,
    protocol: u.protocol,
    hostname: u.hostname,
    port: Number(u.port),
    path: u.pathname,
    query: Object.fromEntries(u.searchParams),
    headers: { host: u.host, ...headers },
  });
  return new Headers(req.headers as Record<string, string>);
}

/** The S3 flags of a test appliance. */
export const S3_ARGS = [
  "--s3-port",
  "0",
  "--s3-access-key",
  CREDS.accessKey,
  "--s3-secret-key",
  CREDS.secretKey,
];

/** A pair whose source and destination both serve S3 (no CP timer: the tests take CPs). */
export function spawnS3Pair(dir: string): Promise<Pair> {
  const args = [...S3_ARGS, "--cp-interval", "0"];
  return spawnPair(dir, { sourceArgs: args, destArgs: args });
}

/** What a client process did. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `cmd` with `args` and `env` (added to a minimal environment), killed
 * after `timeoutMs`.
 */
export async function run(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = 120_000,
): Promise<Run> {
  const child = new Deno.Command(cmd, {
    args,
    env: { ...passThrough(), LANG: "C.UTF-8", ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  }, timeoutMs);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

/** PATH, and pyenv's variables (aws-cli 1 and python3 may be pyenv shims). */
function passThrough(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ["PATH", "PYENV_ROOT", "PYENV_VERSION"]) {
    const v = Deno.env.get(k);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** Runs and asserts exit code 0, naming the command and its stderr otherwise. */
export async function runOk(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs?: number,
): Promise<Run> {
  const r = await run(cmd, args, env, timeoutMs);
  if (r.code !== 0) {
    throw new Error(
      `${cmd} ${args.join(" ")} exited ${r.code}\n${r.stderr.slice(-3000)}\n${
        r.stdout.slice(-1000)
      }`,
    );
  }
  return r;
}

/** The first line `cmd --version` prints, or null when it is not installed. */
export async function versionOf(cmd: string, args = ["--version"]): Promise<string | null> {
  try {
    const r = await run(cmd, args, { HOME: "/nonexistent" }, 30_000);
    return r.code === 0 ? (r.stdout + r.stderr).trim().split("\n")[0] : null;
  } catch {
    return null;
  }
}

/** The environment of aws-cli and boto3: credentials and config files in `dir` only. */
export function awsEnv(dir: string): Record<string, string> {
  return {
    HOME: dir,
    AWS_ACCESS_KEY_ID: CREDS.accessKey,
    AWS_SECRET_ACCESS_KEY: CREDS.secretKey,
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_CONFIG_FILE: `${dir}/aws-config`,
    AWS_SHARED_CREDENTIALS_FILE: `${dir}/aws-credentials`,
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_PAGER: "",
  };
}

/** Writes `n` files of pseudo-random sizes and bytes under `dir` (some in subdirectories). */
export async function writeTree(dir: string, n: number, seed: number): Promise<string[]> {
  const names: string[] = [];
  let x = seed >>> 0;
  const next = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0);
  for (let i = 0; i < n; i++) {
    const name = i % 3 === 0 ? `sub${i % 2}/file-${i}.bin` : `file-${i}.txt`;
    await Deno.mkdir(`${dir}/${name}`.replace(/\/[^/]+$/, ""), { recursive: true });
    const bytes = new Uint8Array(next() % 70_000);
    for (let j = 0; j < bytes.length; j++) bytes[j] = next() >>> 24;
    await Deno.writeFile(`${dir}/${name}`, bytes);
    names.push(name);
  }
  return names.sort();
}

/** True when the two files hold the same bytes. */
export async function sameFile(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([Deno.readFile(a), Deno.readFile(b)]);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

export type { Pair };

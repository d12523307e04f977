/**
 * The S3 face's access key and secret: given (flags or environment), or
 * generated once and kept owner-only in the data directory
 * (`s3-credentials`), so a restarted appliance keeps them.
 *
 * @module
 */
import type { Credentials } from "./sigv4.ts";

/** The file in the data directory. */
export const CREDENTIALS_FILE = "s3-credentials";

/**
 * The credentials to use: `given` when both are set, else those kept in
 * `dir`, else new ones written there (`generated` true: print them once).
 *
 * @example
 * ```ts
 * const { credentials, generated } = await s3Credentials("data/source", { accessKey: null, secretKey: null });
 * ```
 */
export async function s3Credentials(
  dir: string,
  given: { accessKey: string | null; secretKey: string | null },
): Promise<{ credentials: Credentials; generated: boolean }> {
  if (given.accessKey !== null && given.secretKey !== null) {
    return {
      credentials: { accessKey: given.accessKey, secretKey: given.secretKey },
      generated: false,
    };
  }
  const path = `${dir}/${CREDENTIALS_FILE}`;
  try {
    const kept = JSON.parse(await Deno.readTextFile(path)) as Credentials;
    if (typeof kept.accessKey === "string" && typeof kept.secretKey === "string") {
      return { credentials: kept, generated: false };
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw new Error(`${path}: ${e}`);
  }
  const credentials = {
    accessKey: `RS${randomText(18, ALNUM_UPPER)}`,
    secretKey: randomText(40, SECRET),
  };
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(path, `${JSON.stringify(credentials)}\n`, { mode: 0o600 });
  return { credentials, generated: true };
}

const ALNUM_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SECRET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

function randomText(n: number, alphabet: string): string {
  // Both alphabets divide 256 into whole groups (36 does not: reject the tail).
  const out: string[] = [];
  while (out.length < n) {
    for (const b of crypto.getRandomValues(new Uint8Array(n))) {
      const limit = 256 - (256 % alphabet.length);
      if (b < limit && out.length < n) out.push(alphabet[b % alphabet.length]);
    }
  }
  return out.join("");
}

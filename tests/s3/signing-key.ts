/**
 * The SigV4 signing key, derived independently of the code under test (for
 * building signed aws-chunked bodies in tests).
 *
 * @module
 */
import { createHmac } from "node:crypto";

/** HMAC chain `AWS4`+secret → date → us-east-1 → s3 → aws4_request. */
export function signingKey(secret: string, date: string): Uint8Array {
  const h = (key: Uint8Array | string, data: string) =>
    new Uint8Array(createHmac("sha256", key).update(data).digest());
  return h(h(h(h(`AWS4${secret}`, date), "us-east-1"), "s3"), "aws4_request");
}

/**
 * The `--help` text.
 *
 * @module
 */
import { DEFAULTS } from "./args.ts";

/** Usage of every command and flag. */
export const USAGE = `refsync: synchronous edge mirroring that ships references, not bytes

usage:
  refsync pair    [--data DIR] [--source-port P] [--dest-port P] [--token T] [store flags]
  refsync source  [--port P] [--host H] [--data DIR] [--dest URL] [--token T] [--cp-sync refs|full]
                  [--sync-timeout MS] [client flags] [store flags]
  refsync dest    [--port P] [--host H] [--data DIR] [--token T] [client flags] [store flags]
  refsync promote --url DEST_URL --token T
  refsync verify  --data DIR

client flags:
  --client-token T         every object call must send Authorization: Bearer T (default: none;
                           required when --host is not a loopback address)
  --insecure-open          allow a non-loopback --host without --client-token

store flags:
  --cp-interval MS         CP timer (default ${DEFAULTS.cpIntervalMs})
  --cp-dirty-bytes SIZE    CP when this much is dirty; writers wait at twice it (default 64MiB)
  --max-object-bytes SIZE  largest object (default 5GiB)
  --body-idle-timeout MS   cut a request body (408) or a read that makes no progress this long
                           (default ${DEFAULTS.bodyIdleTimeoutMs})
  --space-reserve SIZE     free disk space client writes leave to CPs and deletes (default 8MiB)

The pair token may also come from REFSYNC_TOKEN (without one, source and dest keep a generated one
in DATA/pair-token; every admin POST needs it), the client token from REFSYNC_CLIENT_TOKEN.
Sizes take KiB, MiB, GiB suffixes.`;

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
  refsync source  [--port P] [--host H] [--data DIR] [--dest URL --token T] [--cp-sync refs|full]
                  [--sync-timeout MS] [store flags]
  refsync dest    [--port P] [--host H] [--data DIR] [--token T] [store flags]
  refsync promote --url DEST_URL [--token T]
  refsync verify  --data DIR

store flags:
  --cp-interval MS         CP timer (default ${DEFAULTS.cpIntervalMs})
  --cp-dirty-bytes SIZE    CP when this much is dirty; writers wait at twice it (default 64MiB)
  --max-object-bytes SIZE  largest object (default 5GiB)
  --space-reserve SIZE     free disk space client writes leave to CPs and deletes (default 8MiB)

The token may also come from REFSYNC_TOKEN. Sizes take KiB, MiB, GiB suffixes.`;

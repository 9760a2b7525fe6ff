/**
 * The inner archive: GNU / POSIX tar streams parsed into {@link TarEvent}s, GNU multi-volume
 * sets joined, sparse members resolved.
 *
 * ```ts
 * const events = joinVolumes(volumes).pipeThrough(new TarStream());
 * ```
 *
 * @module
 */

export type {
  TarDataEvent,
  TarEndEvent,
  TarEntry,
  TarEntryEvent,
  TarEntryKind,
  TarEvent,
} from "./events.ts";
export { TarParser, TarStream } from "./tar_stream.ts";
export {
  type ContinuationHeader,
  firstVolumeError,
  isContinuationHeader,
  joinVolumes,
  readContinuationHeader,
  VolumeSizes,
  type VolumeStart,
  VolumeStarts,
  withoutContinuation,
} from "./multivolume.ts";
export { BLOCK_SIZE, hasValidChecksum, isZeroBlock, paddingAfter, parseHeader } from "./header.ts";
export { parseDecimal } from "./numbers.ts";
export { parsePaxRecords } from "./pax.ts";
export type { HeaderFormat, TarHeader } from "./header.ts";

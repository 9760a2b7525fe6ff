/**
 * Output writers, the end of the pipeline: {@link TreeWriter} restores inner tar members as
 * files under a folder, {@link NullWriter} consumes them for `verify`, and
 * {@link safeRelativePath} vets every path a backup asks for.
 *
 * @module
 */

export { NullWriter } from "./null_writer.ts";
export { safeRelativePath } from "./safe_path.ts";
export { type OutputNames, outputNames } from "./skip_existing.ts";
export {
  type DataTarget,
  MAX_FILE_SIZE,
  type OpenFile,
  type OutputFile,
  OutputRun,
  TreeWriter,
  type TreeWriterOptions,
  writeTree,
} from "./tree_writer.ts";
export {
  backgroundFs,
  type NodeInfo,
  realFs,
  type SinkFile,
  VirtualFs,
  workerFs,
  type WriterFs,
} from "./writer_fs.ts";

/**
 * Output writers, the end of the pipeline: {@link TreeWriter} restores inner tar members as
 * files under a folder, {@link NullWriter} consumes them for `verify`, and
 * {@link safeRelativePath} vets every path a backup asks for.
 *
 * @module
 */

export { NullWriter } from "./null_writer.ts";
export { safeRelativePath } from "./safe_path.ts";
export {
  type OpenFile,
  type OutputFile,
  TreeWriter,
  type TreeWriterOptions,
} from "./tree_writer.ts";

/**
 * The error a damaged or hostile file system image raises inside the ext reader.
 *
 * @module
 */

import { DamagedError, UnsupportedError } from "../errors.ts";

/**
 * Something in the image contradicts the ext2/3/4 format (a pointer outside the image, a loop,
 * an impossible size). The message is only the reason ("extent tree loops at block 812"); the
 * command that reads a path puts the path in front. Exit code 4, like any damaged input.
 */
export class ImageDamage extends DamagedError {}

/** The image uses an ext feature this reader does not read (compression, encryption). Exit code 6. */
export class ImageUnsupported extends UnsupportedError {}

/**
 * Small stream helpers shared by the pipeline stages.
 *
 * @module
 */

export * from "./collect.ts";
export * from "./concat.ts";
export * from "./map_errors.ts";
export * from "./sniff.ts";
export * from "./piece_pool.ts";
export * from "./piece_streams.ts";

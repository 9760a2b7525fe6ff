/**
 * How library code tells the user something without printing: the caller passes a reporter.
 *
 * @module
 */

/** Receives notices from library code; the CLI prints them, tests record them. */
export interface Reporter {
  /** A fact worth knowing ("Key derivation: MD5, as OpenSSL 1.0 wrote it"). */
  info(message: string): void;
  /** Something unusual that did not stop the command. */
  warn(message: string): void;
  /** A file was restored or verified completely. */
  fileDone?(path: string, size: number): void;
  /** Bytes of the backup read so far, for progress display. */
  progress?(bytesRead: number, totalBytes: number | undefined): void;
}

/** A reporter that drops everything. */
export const silentReporter: Reporter = {
  info() {},
  warn() {},
};

/**
 * The driver shared by the formats of the outer-archive kind (2, 3, 4): it reads qubes.xml as
 * the first item, then walks the outer entries and hands out one {@linkcode BackupItem} per
 * item, each read through the format's {@linkcode FormatReader}. Entries that are no chunk are
 * skipped with a warning; a missing chunk 0 stops the read.
 *
 * @module
 */

import { type Catalog, ownerOf, parseQubesXml } from "../catalog/mod.ts";
import { DamagedError, IncompleteError, type RecoverError } from "../errors.ts";
import { parseChunkName } from "../outer/mod.ts";
import type { Reporter } from "../reporter.ts";
import type { TarEvent, VolumeStarts } from "../tar/mod.ts";
import { type Backup, type BackupItem, type FormatReader, MAX_QUBES_XML } from "./backup.ts";
import { skipChunks } from "./chunks.ts";
import type { SalvageProbe } from "../salvage/chunks.ts";
import type { EntryQueue } from "./entry_queue.ts";
import type { ReadContext } from "./read_context.ts";

/** What an item has been used for: nothing yet, read (events or bytes), or skipped. */
type ItemState = "unread" | "read" | "skipped";

/** One item of an outer archive; it may be read or skipped once. */
class ArchiveItem implements BackupItem {
  readonly owner: BackupItem["owner"];
  #state: ItemState = "unread";
  #drained = false;

  /**
   * @param broken Why the item cannot be read (its first chunk is missing): reading it fails
   *   with this error, and `drain()` passes over what there is of it.
   */
  constructor(
    readonly name: string,
    catalog: Catalog | undefined,
    readonly reader: FormatReader,
    readonly queue: EntryQueue,
    readonly broken?: RecoverError,
  ) {
    this.owner = catalog && ownerOf(catalog, name);
  }

  /** Whether the item was neither read nor skipped. */
  get unread(): boolean {
    return this.#state === "unread";
  }

  events(volumes?: VolumeStarts): ReadableStream<TarEvent> {
    this.#use("read");
    return this.broken ? failing(this.broken) : this.reader.events(this.name, volumes);
  }

  plainTar(): ReadableStream<Uint8Array> {
    this.#use("read");
    return this.broken ? failing(this.broken) : this.reader.plainTar(this.name);
  }

  volumes(): AsyncIterable<{ gzip: boolean; stream: ReadableStream<Uint8Array> }> {
    const volumes = this.reader.volumes;
    if (volumes === undefined) throw new Error(`Item "${this.name}" has no volumes`);
    this.#use("read");
    return this.broken ? failing(this.broken) : volumes.call(this.reader, this.name);
  }

  salvageTar(probe?: SalvageProbe): ReadableStream<Uint8Array> | undefined {
    const tar = this.reader.salvageTar?.(this.name, probe);
    if (tar !== undefined) this.#use("read");
    return tar;
  }

  /** Whether the item was read and not drained yet. */
  get undrained(): boolean {
    return this.#state === "read" && !this.#drained;
  }

  async drain(onProblem?: (error: RecoverError) => void): Promise<void> {
    if (this.#state !== "read") throw new Error(`Item "${this.name}" was not read`);
    if (this.#drained) return;
    this.#drained = true;
    await this.queue.stopReading();
    if (onProblem !== undefined) await this.reader.checkRest(this.name, onProblem);
    await skipChunks(this.queue, this.name, this.reader.encChunks);
  }

  async skip(): Promise<void> {
    this.#use("skipped");
    await skipChunks(this.queue, this.name, this.reader.encChunks);
  }

  #use(next: ItemState): void {
    if (this.#state !== "unread") throw new Error(`Item "${this.name}" was already ${this.#state}`);
    this.#state = next;
  }
}

/**
 * A backup of format 2-4 whose header (if any) has been authenticated: reads qubes.xml, the
 * first item, and returns the backup.
 *
 * @param queue Outer entries; the next one must be `qubes.xml.000` (or `.enc`).
 * @param close Releases the worker and the file.
 * @param opening When given, a damaged qubes.xml is a problem of the backup (added to
 *   `problems`, the catalogue empty, a warning) rather than the end, once the passphrase is
 *   proven: by the header (`proven`) or, in formats 2 and 3, by qubes.xml's chunk HMAC. A
 *   qubes.xml that does not verify under an unproven passphrase is a wrong passphrase.
 */
export async function openArchiveBackup(
  queue: EntryQueue,
  reader: FormatReader,
  ctx: ReadContext,
  reporter: Reporter,
  close: () => Promise<void>,
  opening?: {
    proven: boolean;
    problems: { item: string; error: DamagedError | IncompleteError }[];
    /** Thrown when qubes.xml does not prove the passphrase either (see `readHeaderTolerant`). */
    refusal?: RecoverError;
  },
): Promise<Backup> {
  const enc = reader.encChunks;
  const xmlEntry = await queue.peek();
  const xmlChunk = xmlEntry && parseChunkName(xmlEntry.name, enc);
  if (xmlChunk?.item !== "qubes.xml" || xmlChunk.index !== 0) {
    throw new IncompleteError({
      reason: "missing",
      action: "read the VM list",
      detail: `"qubes.xml.000${enc ? ".enc" : ""}" is missing${
        xmlEntry ? ` (found "${xmlEntry.name}")` : ""
      }`,
    });
  }
  let qubesXml: Uint8Array;
  let catalog: Catalog;
  const problems = opening?.problems ?? [];
  // The header's damage is told once the passphrase is proven.
  const headerProblems = problems.slice();
  let told = false;
  const tellHeader = () => {
    if (!told) { for (const { error } of headerProblems) reporter.warn(error.message); }
    told = true;
  };
  try {
    qubesXml = await readQubesXml(reader.events("qubes.xml"));
    catalog = parseQubesXml(qubesXml);
  } catch (error) {
    // Without an authenticated header, qubes.xml's chunk is what proves the passphrase (in
    // formats 2 and 3 its HMAC settles the digest even when the XML does not parse). When it
    // does not, the header's own refusal stands (most likely a wrong passphrase).
    const proven = opening !== undefined &&
      (opening.proven || (reader.format !== 4 && ctx.hmacDigest !== undefined));
    if (!proven && opening?.refusal !== undefined) throw opening.refusal;
    if (!proven || !(error instanceof DamagedError || error instanceof IncompleteError)) {
      throw error;
    }
    tellHeader();
    problems.push({ item: "qubes.xml", error });
    await queue.stopReading();
    await reader.checkRest("qubes.xml", (more) => {
      if (more instanceof DamagedError || more instanceof IncompleteError) {
        problems.push({ item: "qubes.xml", error: more });
      }
    });
    await skipChunks(queue, "qubes.xml", enc);
    qubesXml = new Uint8Array(0);
    catalog = { schema: reader.format === 4 ? "core3" : "core2", vms: [] };
    reporter.warn(
      `qubes.xml cannot be read (${error.message}): every item is restored under its path in the backup, and what the backup should hold cannot be checked`,
    );
  }
  tellHeader();
  if (ctx.header === undefined && ctx.hmacDigest !== undefined) {
    reporter.info(`HMAC digest: ${ctx.hmacDigest.toUpperCase()}`);
  }

  return {
    format: reader.format,
    header: ctx.header,
    problems,
    get kdf() {
      return ctx.kdf;
    },
    catalog,
    qubesXml,
    async *items() {
      for (;;) {
        const entry = await queue.peek();
        if (entry === undefined) return;
        const parsed = parseChunkName(entry.name, enc);
        if (parsed === undefined) {
          const base = !enc && entry.name.endsWith(".hmac") ? entry.name.slice(0, -5) : undefined;
          const orphan = base === undefined ? undefined : parseChunkName(base, false);
          if (orphan !== undefined) {
            // The item is tried like any other: reading it fails, the backup goes on.
            yield* tried(
              new ArchiveItem(
                orphan.item,
                catalog,
                reader,
                queue,
                new IncompleteError({
                  reason: "missing",
                  action: "read item",
                  subject: { kind: "item", name: orphan.item },
                  detail: `chunk "${base}" is missing ("${entry.name}" is there)`,
                }),
              ),
            );
            continue;
          }
          reporter.warn(`Skipping "${entry.name}": not a chunk of any item`);
          await queue.next();
          await entry.skip();
          continue;
        }
        const broken = parsed.index === 0 ? undefined : new IncompleteError({
          reason: "missing",
          action: "read item",
          subject: { kind: "item", name: parsed.item },
          detail: `its first chunk is missing (found "${entry.name}")`,
        });
        yield* tried(new ArchiveItem(parsed.item, catalog, reader, queue, broken));
      }
    },
    close,
  };
}

/**
 * Hands out one item; an item the caller neither read nor skipped is skipped after, and one
 * whose read failed and was not drained is drained (without checking), so the next item
 * starts where it belongs.
 */
async function* tried(item: ArchiveItem): AsyncGenerator<ArchiveItem> {
  yield item;
  if (item.unread) await item.skip();
  else if (item.undrained) await item.drain();
}

/** A stream that fails with `error` when read. */
function failing<T>(error: unknown): ReadableStream<T> {
  return new ReadableStream<T>({
    pull() {
      throw error;
    },
  });
}

/** The bytes of member `qubes.xml` in the first item's tar events. */
async function readQubesXml(events: ReadableStream<TarEvent>): Promise<Uint8Array> {
  let xml: Uint8Array | undefined;
  let buffer: Uint8Array | undefined;
  for await (const event of events) {
    if (event.type === "entry") {
      buffer = undefined;
      if (event.entry.name === "qubes.xml" && event.entry.kind === "file") {
        if (event.entry.size > MAX_QUBES_XML) {
          throw new DamagedError({
            reason: "too-large",
            action: "read",
            subject: { kind: "member", name: "qubes.xml" },
            detail: `it is ${event.entry.size} bytes long`,
          });
        }
        buffer = new Uint8Array(event.entry.size);
      }
    } else if (event.type === "data") {
      buffer?.set(event.bytes, event.offset);
    } else if (buffer !== undefined) {
      xml = buffer;
      buffer = undefined;
    }
  }
  if (xml === undefined) {
    throw new DamagedError({
      reason: "damaged",
      action: "read the VM list",
      detail: `item "qubes.xml" holds no qubes.xml`,
    });
  }
  return xml;
}

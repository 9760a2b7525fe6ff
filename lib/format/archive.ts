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
 */
export async function openArchiveBackup(
  queue: EntryQueue,
  reader: FormatReader,
  ctx: ReadContext,
  reporter: Reporter,
  close: () => Promise<void>,
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
  const qubesXml = await readQubesXml(reader.events("qubes.xml"));
  const catalog = parseQubesXml(qubesXml);
  if (ctx.header === undefined && ctx.hmacDigest !== undefined) {
    reporter.info(`HMAC digest: ${ctx.hmacDigest.toUpperCase()}`);
  }

  return {
    format: reader.format,
    header: ctx.header,
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

/**
 * Go's bufio.Reader.ReadString('\n') over a Node stream: each call returns the bytes up to and
 * including the next newline; at end of input it returns what is left with `eof: true`.
 * Reading on demand (not all of stdin up front) lets `txn -i` prompt between sections.
 */
export class LineReader {
  private buffered = Buffer.alloc(0);
  private ended = false;
  private readonly chunks: AsyncIterator<Buffer | string>;

  constructor(stream: NodeJS.ReadableStream) {
    this.chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  }

  async readLine(): Promise<{ line: Buffer; eof: boolean }> {
    for (;;) {
      const nl = this.buffered.indexOf(0x0a);
      if (nl >= 0) {
        const line = this.buffered.subarray(0, nl + 1);
        this.buffered = this.buffered.subarray(nl + 1);
        return { line, eof: false };
      }
      if (this.ended) {
        const line = this.buffered;
        this.buffered = Buffer.alloc(0);
        return { line, eof: true };
      }
      const next = await this.chunks.next();
      if (next.done) this.ended = true;
      else {
        const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
        this.buffered = Buffer.concat([this.buffered, chunk]);
      }
    }
  }
}

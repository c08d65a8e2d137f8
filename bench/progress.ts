import process from "node:process";

/** One line on stderr, rewritten in place; silent when stderr is not a terminal. */
export class Progress {
  readonly visible = process.stderr.isTTY === true;
  #shown = false;

  update(text: string): void {
    if (!this.visible) return;
    process.stderr.write(`\r\x1b[2K${text}`);
    this.#shown = true;
  }

  clear(): void {
    if (this.#shown) process.stderr.write("\r\x1b[2K");
    this.#shown = false;
  }
}

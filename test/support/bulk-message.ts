/** Streams big messages at an edge and reads a process's memory, for the tests that bound cost per byte. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import { RawSmtpClient } from './smtp-client.js';

export const MIB = 1024 * 1024;
export const BULK_HEADER = 'From: big@example.org\r\nSubject: big\r\n\r\n';

/** A field of /proc/<pid>/status in KiB: VmRSS now, or VmHWM (peak since the last resetPeak). */
export async function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(await fs.readFile(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `no ${field} for ${pid}`);
  return Number(m[1]);
}

/** Resets VmHWM to the current RSS, so the next read is the peak from here on. */
export async function resetPeak(pid: number): Promise<void> {
  await fs.writeFile(`/proc/${pid}/clear_refs`, '5');
}

/** CPU seconds (user + system) a process has used so far. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * One transaction whose body is `bytes` bytes of `unit` repeated after BULK_HEADER, streamed with the
 * client's own back-pressure; resolves with the reply to the end of data.
 */
export async function sendBulk(port: number, body: { bytes: number; unit: Buffer }, replyTimeoutMs = 120_000): Promise<string> {
  const c = await RawSmtpClient.connect(port);
  try {
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO client.example')).code, 250);
    assert.equal((await c.cmd('MAIL FROM:<big@example.org>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<bob@example.com>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    const chunk = Buffer.concat(Array.from({ length: Math.ceil((64 * 1024) / body.unit.length) }, () => body.unit));
    c.write(BULK_HEADER);
    let left = body.bytes;
    let last = chunk;
    while (left > 0) {
      last = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= last.length;
      if (!c.socket.write(last)) await once(c.socket, 'drain');
    }
    // The end-of-data dot opens a line of its own only after CRLF (a bare LF or CR does not end a line).
    const endsWithCrlf = last.length >= 2 && last.at(-2) === 0x0d && last.at(-1) === 0x0a;
    c.write(endsWithCrlf ? '.\r\n' : '\r\n.\r\n');
    const end = await c.read(replyTimeoutMs);
    c.send('QUIT');
    return end.line;
  } finally {
    c.quit();
  }
}

/**
 * A minimal timing SMTP client for the benchmark: runs one transaction command by command and
 * records when each reply arrived, stopping at the first reply that is not positive.
 */
import net from 'node:net';

export interface ProbeStep {
  command: string;
  code: number;
  reply: string;
  /** Milliseconds from the TCP connect to this reply. */
  atMs: number;
}

export interface ProbeResult {
  steps: ProbeStep[];
  /** Milliseconds from connect to the first 4xx/5xx reply, when there was one. */
  firstFailureMs?: number;
  firstFailure?: string;
}

/** Runs greeting, EHLO, MAIL, RCPT, DATA and a short message against `port`, giving up after `timeoutMs`. */
export function probeTransaction(port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const commands = ['EHLO probe.bench.test', 'MAIL FROM:<probe@bench.test>', 'RCPT TO:<user@example.test>', 'DATA', 'Subject: probe\r\n\r\nprobe\r\n.', 'QUIT'];
    const steps: ProbeStep[] = [];
    let started = 0;
    let buffer = '';
    let next = 0;
    let lastCommand = '(greeting)';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no final reply within ${timeoutMs} ms; got ${JSON.stringify(steps)}`));
    }, timeoutMs);
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      const failure = steps.find((s) => s.code >= 400);
      resolve(failure ? { steps, firstFailureMs: failure.atMs, firstFailure: `${failure.command} -> ${failure.reply}` } : { steps });
    };
    socket.on('connect', () => (started = performance.now()));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', finish);
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      let eol: number;
      while ((eol = buffer.indexOf('\r\n')) !== -1) {
        const line = buffer.slice(0, eol);
        buffer = buffer.slice(eol + 2);
        if (line[3] === '-') continue;
        const code = Number(line.slice(0, 3));
        steps.push({ command: lastCommand, code, reply: line, atMs: performance.now() - started });
        if (code >= 400 || next >= commands.length) {
          finish();
          return;
        }
        lastCommand = commands[next++] as string;
        socket.write(`${lastCommand}\r\n`);
      }
    });
  });
}

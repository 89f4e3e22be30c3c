/**
 * Turns off V8's allocation-site pretenuring for this process (`--no-allocation-site-pretenuring`).
 *
 * V8 counts, per object or array literal in the code, how many of the objects it made survive a
 * young-generation collection (scavenge); past about 85 % it makes that literal's objects directly in
 * the old generation. An edge makes each connection's objects and drops them within milliseconds,
 * but once one of its literals (smtp-server's, Node's or ours) has been tenured, say after a spell of
 * slow messages, each closed connection leaves old objects the scavenger cannot know are dead: they
 * point at the connection's young ones, which then survive scavenges and are promoted, and push more
 * of its literals over the threshold. Measured (workers 1, one connection at a time greeted and sent
 * QUIT, after 500 messages): 3.0 KB promoted per connection with pretenuring, 1.4-1.5 KB without; a
 * connection per message (9 rounds of 2,000): 0.355 -> 0.320 ms CPU a message; reused connections,
 * whose long-lived objects pretenuring could have placed at once, no dearer (16 rounds, within noise).
 *
 * Set once, before the first connection: the flag is read as collections run.
 */
import v8 from 'node:v8';

export function stopPretenuring(): void {
  v8.setFlagsFromString('--no-allocation-site-pretenuring');
}

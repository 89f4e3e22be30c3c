import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { buildDsn, type DsnRecipient } from '../../src/transport/dsn.js';
import type { Envelope } from '../../src/transport/types.js';

let dir: string;
let contentPath: string;
const ORIGINAL = 'Received: from edge\r\nFrom: sender@remote.test\r\nTo: list@example.com\r\nSubject: Quarterly\r\n numbers\r\nMessage-ID: <orig-1@remote.test>\r\n\r\nHello h\u00e9llo,\r\nthe body.\r\n';

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-dsn-'));
  contentPath = path.join(dir, 'orig.eml');
  await writeFile(contentPath, ORIGINAL, 'utf8');
});
after(async () => rm(dir, { recursive: true, force: true }));

interface Parsed {
  contentType: string;
  reportType: string;
  to: string;
  subject: string;
  autoSubmitted: string;
  parts: string[];
  perMessage: Record<string, string>;
  perRecipient: Record<string, string>[];
  returned: { type: string; subject: string | null; messageId: string | null; body: string | null; bodyHex: string | null };
  defects: number;
}

/** Parses a report with Python's email package and returns what a mail client would see. */
function parseWithPython(message: Buffer): Parsed {
  const script = `
import email, json, sys
from email import policy
msg = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.compat32)
parts = msg.get_payload()
status = parts[1].get_payload()
ret = parts[2]
if ret.get_content_type() == 'message/rfc822':
    inner = ret.get_payload()[0]
    body = inner.get_payload(decode=True)
    returned = {'type': 'message/rfc822', 'subject': inner['Subject'], 'messageId': inner['Message-ID'], 'body': body.decode('utf-8', errors='replace'), 'bodyHex': body.hex()}
else:
    text = ret.get_payload()
    inner = email.message_from_string(text if isinstance(text, str) else text[0].as_string())
    returned = {'type': ret.get_content_type(), 'subject': inner['Subject'], 'messageId': inner['Message-ID'], 'body': None, 'bodyHex': None}
defects = len(msg.defects) + sum(len(p.defects) for p in msg.walk())
print(json.dumps({
  'contentType': msg.get_content_type(),
  'reportType': msg.get_param('report-type'),
  'to': msg['To'], 'subject': msg['Subject'], 'autoSubmitted': msg['Auto-Submitted'],
  'parts': [p.get_content_type() for p in parts],
  'perMessage': dict(status[0].items()),
  'perRecipient': [dict(s.items()) for s in status[1:]],
  'returned': returned,
  'defects': defects,
}))
`;
  return JSON.parse(execFileSync('python3', ['-c', script], { input: message, encoding: 'utf8' })) as Parsed;
}

function envelope(extra: Partial<Envelope> = {}): Envelope {
  return {
    id: 'Q123', mailFrom: 'sender@remote.test', size: ORIGINAL.length, receivedAt: Date.UTC(2024, 0, 2, 3, 4, 5),
    recipients: [{ address: 'list@example.com' }, { address: 'ghost@example.com' }],
    client: { ip: '192.0.2.7', helo: 'client.remote.test' },
    ...extra,
  };
}

test('an NDR is a real multipart/report with per-recipient delivery-status and the full original', async () => {
  const results: DsnRecipient[] = [
    { address: 'ghost@example.com', outcome: 'failed', code: 550, enhanced: '5.1.1', text: 'Recipient not found: ghost@example.com', action: 'failed' },
    { address: 'far@remote.test', outcome: 'failed', code: 554, enhanced: '5.4.6', text: 'Forwarding loop', action: 'failed', orcpt: 'rfc822;list@example.com', remoteMta: 'mx.remote.test' },
  ];
  const dsn = await buildDsn({
    reportingMta: 'mx.example.com', original: envelope({ envid: 'ENV-42' }), originalContentPath: contentPath, results,
    from: 'Mail Delivery System <MAILER-DAEMON@mx.example.com>', now: new Date(Date.UTC(2024, 0, 3)),
  });
  const p = parseWithPython(dsn);
  assert.equal(p.defects, 0);
  assert.equal(p.contentType, 'multipart/report');
  assert.equal(p.reportType, 'delivery-status');
  assert.equal(p.to, '<sender@remote.test>');
  assert.equal(p.subject, 'Undeliverable: Quarterly numbers');
  assert.equal(p.autoSubmitted, 'auto-replied');
  assert.deepEqual(p.parts, ['text/plain', 'message/delivery-status', 'message/rfc822']);
  assert.equal(p.perMessage['Reporting-MTA'], 'dns; mx.example.com');
  assert.equal(p.perMessage['Original-Envelope-Id'], 'ENV-42');
  assert.equal(p.perMessage['Arrival-Date'], 'Tue, 02 Jan 2024 03:04:05 +0000');
  assert.equal(p.perMessage['Received-From-MTA'], 'dns; client.remote.test (192.0.2.7)');
  assert.equal(p.perRecipient.length, 2);
  assert.deepEqual(
    [p.perRecipient[0]!['Final-Recipient'], p.perRecipient[0]!['Action'], p.perRecipient[0]!['Status'], p.perRecipient[0]!['Diagnostic-Code']],
    ['rfc822; ghost@example.com', 'failed', '5.1.1', 'smtp; 550 5.1.1 Recipient not found: ghost@example.com'],
  );
  assert.equal(p.perRecipient[0]!['Original-Recipient'], undefined);
  assert.equal(p.perRecipient[1]!['Original-Recipient'], 'rfc822; list@example.com');
  assert.equal(p.perRecipient[1]!['Remote-MTA'], 'dns; mx.remote.test');
  assert.equal(p.returned.type, 'message/rfc822');
  assert.equal(p.returned.messageId, '<orig-1@remote.test>');
  assert.equal(p.returned.body, 'Hello h\u00e9llo,\r\nthe body.\r\n');
});

test('RET=HDRS returns only the header as text/rfc822-headers', async () => {
  const dsn = await buildDsn({
    reportingMta: 'mx.example.com', original: envelope({ ret: 'HDRS' }), originalContentPath: contentPath,
    results: [{ address: 'ghost@example.com', outcome: 'failed', code: 550, enhanced: '5.1.1', text: 'nope', action: 'failed' }],
    from: 'MAILER-DAEMON@mx.example.com', now: new Date(),
  });
  const p = parseWithPython(dsn);
  assert.equal(p.defects, 0);
  assert.deepEqual(p.parts, ['text/plain', 'message/delivery-status', 'text/rfc822-headers']);
  assert.equal(p.returned.messageId, '<orig-1@remote.test>');
  assert.equal(dsn.includes('the body.'), false);
  assert.equal(p.perMessage['Original-Envelope-Id'], undefined);
});

test('a delay report says delayed with a 4.x.x status and returns headers only by default', async () => {
  const dsn = await buildDsn({
    reportingMta: 'mx.example.com', original: envelope({ client: undefined }), originalContentPath: contentPath,
    results: [{ address: 'far@remote.test', outcome: 'deferred', code: 451, enhanced: '4.4.1', text: 'Connection refused', action: 'delayed', remoteMta: '127.0.0.1' }],
    from: 'MAILER-DAEMON@mx.example.com', now: new Date(), willRetryUntil: new Date(Date.UTC(2026, 10, 25, 9, 30)),
  });
  const p = parseWithPython(dsn);
  assert.equal(p.subject, 'Delivery delayed: Quarterly numbers');
  assert.deepEqual([p.perRecipient[0]!['Action'], p.perRecipient[0]!['Status']], ['delayed', '4.4.1']);
  assert.equal(p.perRecipient[0]!['Will-Retry-Until'], 'Wed, 25 Nov 2026 09:30:00 +0000');
  assert.equal(p.parts[2], 'text/rfc822-headers');
  assert.equal(p.perMessage['Received-From-MTA'], undefined);
});

test('the returned message is the bytes received: an 8-bit Latin-1 body and header come back unaltered, in full and as headers', async () => {
  const latin1 = Buffer.from('From: s@remote.test\r\nSubject: Latin-1\r\nX-Note: na\xefve caf\xe9\r\nMessage-ID: <l1@remote.test>\r\n\r\nGr\xfc\xdfe aus K\xf6ln\r\n', 'latin1');
  const file = path.join(dir, 'latin1.eml');
  await writeFile(file, latin1);
  const failed: DsnRecipient = { address: 'ghost@example.com', outcome: 'failed', code: 550, enhanced: '5.1.1', text: 'nope', action: 'failed' };
  for (const ret of ['FULL', 'HDRS'] as const) {
    const dsn = await buildDsn({
      reportingMta: 'mx.example.com', original: envelope({ ret }), originalContentPath: file,
      results: [failed], from: 'MAILER-DAEMON@mx.example.com', now: new Date(),
    });
    const returned = ret === 'FULL' ? latin1 : latin1.subarray(0, latin1.indexOf('\r\n\r\n') + 2);
    assert.ok(dsn.includes(returned), `RET=${ret}: the returned part holds the original bytes`);
    assert.equal(dsn.includes(Buffer.from('\ufffd', 'utf8')), false, `RET=${ret}: no replacement character`);
    const p = parseWithPython(dsn);
    assert.equal(p.defects, 0);
    assert.equal(p.returned.messageId, '<l1@remote.test>');
    if (ret === 'FULL') assert.equal(p.returned.bodyHex, Buffer.from('Gr\xfc\xdfe aus K\xf6ln\r\n', 'latin1').toString('hex'));
  }
});

test('a relayed report (NOTIFY=SUCCESS to a next hop without DSN) says relayed with a 2.x.x status and returns headers only', async () => {
  const dsn = await buildDsn({
    reportingMta: 'mx.example.com', original: envelope(), originalContentPath: contentPath,
    results: [{ address: 'far@remote.test', outcome: 'delivered', code: 250, enhanced: '2.0.0', text: 'OK', action: 'relayed', remoteMta: 'smart.remote.test' }],
    from: 'MAILER-DAEMON@mx.example.com', now: new Date(),
  });
  const p = parseWithPython(dsn);
  assert.equal(p.defects, 0);
  assert.equal(p.subject, 'Relayed: Quarterly numbers');
  assert.deepEqual([p.perRecipient[0]!['Action'], p.perRecipient[0]!['Status'], p.perRecipient[0]!['Remote-MTA']], ['relayed', '2.0.0', 'dns; smart.remote.test']);
  assert.equal(p.parts[2], 'text/rfc822-headers');
});

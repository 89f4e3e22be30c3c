/** The delivery parts together: categorize, route, deliver to Maildir and to a smart host, and bounce with a real NDR. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { RulesSchema } from '../../src/config/schema.js';
import { DnsClient } from '../../src/dns/client.js';
import { categorize, countHops, outboundRecipient } from '../../src/transport/categorizer.js';
import { DirectoryModel } from '../../src/directory/directory-model.js';
import { buildDsn } from '../../src/transport/dsn.js';
import { deliverLocal, localDeliveryHeaders } from '../../src/transport/local-delivery.js';
import { mailboxDir } from '../../src/transport/maildir.js';
import { RemoteDelivery } from '../../src/transport/remote-delivery.js';
import { Router } from '../../src/transport/router.js';
import type { Envelope, RecipientResult } from '../../src/transport/types.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';

let dir: string;
let sink: SmtpSink;
let dnsServer: TestDnsServer;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-pipeline-'));
  sink = await startSmtpSink();
  dnsServer = await startDnsServer();
});
after(async () => {
  await sink.stop();
  await dnsServer.close();
  await rm(dir, { recursive: true, force: true });
});

test('group with a loop lands once per Maildir, an alias goes out by smart host, an unknown recipient gets a real 5.1.1 NDR', async () => {
  const rules = RulesSchema.parse({
    hostname: 'mx.example.com',
    acceptedDomains: ['example.com'],
    listeners: [{ name: 'edge', listen: '127.0.0.1:2525' }],
    directory: {
      mailboxes: [{ address: 'alice@example.com', proxyAddresses: ['al@example.com'] }, { address: 'bob@example.com' }],
      aliases: [{ address: 'sales@example.com', forwardTo: ['partner@remote.test'] }],
      groups: [
        { address: 'team@example.com', members: ['alice@example.com', 'al@example.com', 'all@example.com', 'sales@example.com'] },
        { address: 'all@example.com', members: ['bob@example.com', 'team@example.com'] },
      ],
    },
    transport: { connectors: [{ name: 'outbound', addressSpaces: ['*'], smartHost: `127.0.0.1:${sink.port}` }] },
  });
  const content = path.join(dir, 'msg.eml');
  const message = 'Received: from client by edge\r\nFrom: sender@remote.test\r\nTo: team@example.com\r\nSubject: Pipeline\r\nMessage-ID: <p1@remote.test>\r\n\r\nHi all.\r\n';
  await writeFile(content, message);
  const env: Envelope = {
    id: 'P1', mailFrom: 'sender@remote.test', envid: 'ENV-P1', size: message.length, receivedAt: Date.now(),
    recipients: [{ address: 'team@example.com' }, { address: 'ghost@example.com', orcpt: 'rfc822;ghost@example.com', notify: ['FAILURE'] }],
  };
  const dirModel = DirectoryModel.fromRules(rules);
  const c = categorize(env, { hopCount: countHops(message.slice(0, message.indexOf('\r\n\r\n'))) }, dirModel, rules);

  const mailboxRoot = path.join(dir, 'mailboxes');
  for (const l of c.local) await deliverLocal(mailboxRoot, l.mailbox, content, localDeliveryHeaders(env.mailFrom, l.mailbox));

  const router = new Router(rules);
  const remote = new RemoteDelivery({ hostname: rules.hostname, dns: new DnsClient({ servers: [dnsServer.address], timeoutMs: 1000 }), timeoutMs: 5000, maxConnections: 4, maxPerDomain: 2, port: 25 });
  const remoteResults: RecipientResult[] = [];
  for (const item of c.remote) {
    const rcpt = outboundRecipient(item);
    remoteResults.push(...(await remote.deliver(router.route(rcpt.address.split('@')[1]!), env, [rcpt], content)));
  }
  assert.deepEqual(remoteResults.map((r) => [r.address, r.outcome]), [['partner@remote.test', 'delivered']]);

  const countIn = (mailbox: string): number => Number(execFileSync('python3', ['-c', 'import mailbox,sys; print(len(mailbox.Maildir(sys.argv[1], create=False)))', mailboxDir(mailboxRoot, mailbox)], { encoding: 'utf8' }).trim());
  assert.equal(countIn('alice@example.com'), 1);
  assert.equal(countIn('bob@example.com'), 1);

  assert.deepEqual(c.failed.map((f) => [f.result.address, f.result.enhanced]), [['ghost@example.com', '5.1.1']]);
  const ndr = await buildDsn({
    reportingMta: rules.hostname, original: env, originalContentPath: content, from: `MAILER-DAEMON@${rules.hostname}`, now: new Date(),
    results: c.failed.map((f) => ({ ...f.result, action: 'failed' as const, ...(f.recipient.orcpt ? { orcpt: f.recipient.orcpt } : {}) })),
  });
  const ndrPath = path.join(dir, 'ndr.eml');
  await writeFile(ndrPath, ndr, 'utf8');
  const ndrEnv: Envelope = { id: 'P1-ndr', mailFrom: '', recipients: [{ address: env.mailFrom }], size: Buffer.byteLength(ndr), receivedAt: Date.now(), isDsn: true };
  const sent = await remote.deliver(router.route('remote.test'), ndrEnv, ndrEnv.recipients, ndrPath);
  assert.equal(sent[0]!.outcome, 'delivered');

  let dumps: string[] = [];
  for (let i = 0; i < 100 && dumps.length < 2; i++) {
    dumps = await sink.transactions();
    if (dumps.length < 2) await new Promise((r) => setTimeout(r, 50));
  }
  const forwarded = dumps.find((d) => d.includes('X-Rcpt-Args: <partner@remote.test>'));
  assert.match(forwarded ?? '', /ORCPT=rfc822;team@example.com/, 'ORCPT names the envelope recipient the copy came from');
  const bounce = dumps.find((d) => d.includes('X-Mail-Args: <>'));
  assert.ok(bounce, 'the NDR went out with the blank sender');
  const parsed = JSON.parse(execFileSync('python3', ['-c', [
    'import email, json, sys',
    'm = email.message_from_string(sys.stdin.read())',
    'parts = m.get_payload()',
    'rcpt = parts[1].get_payload()[1]',
    'print(json.dumps([m.get_content_type(), m.get_param("report-type"), parts[1].get_payload()[0]["Original-Envelope-Id"], rcpt["Final-Recipient"], rcpt["Status"], rcpt["Original-Recipient"], parts[2].get_payload()[0]["Message-ID"]]))',
  ].join('\n')], { input: bounce, encoding: 'utf8' })) as string[];
  assert.deepEqual(parsed, ['multipart/report', 'delivery-status', 'ENV-P1', 'rfc822; ghost@example.com', '5.1.1', 'rfc822; ghost@example.com', '<p1@remote.test>']);
});

import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** A small valid rule set that the loader tests vary one key at a time; line numbers matter to them. */
export const GOOD = `hostname: mx.example.test
acceptedDomains: [example.test]
listeners:
  - name: internet
    listen: 127.0.0.1:2525
    ipRestrictions: { default: grant, except: [192.0.2.99, "198.51.100.0 255.255.255.0"] }
connectionFilter:
  deny:
    - 192.0.2.0/24
    - file: lists/deny.txt
senderFilter: { blocked: ["*@spam.example"] }
badmail: ../spool/badmail
`;

export const DENY_TXT = '# deny list\n203.0.113.1\n\n10.0.0.0 255.0.0.0   # a group\n';

/** A fresh folder holding the given files (paths relative to it); returns its absolute path. */
export async function folder(files: Record<string, string>): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'portcullis-cfg-'));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(dirname(join(d, name)), { recursive: true });
    await writeFile(join(d, name), text);
  }
  return d;
}

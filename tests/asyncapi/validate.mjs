// Parse an AsyncAPI document (JSON on stdin) with the AsyncAPI project's own parser and print
// every diagnostic; exit 1 when any is an error.
import { Parser } from '@asyncapi/parser';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const document = Buffer.concat(chunks).toString('utf8');

const parser = new Parser();
const { diagnostics } = await parser.parse(document);
const severities = ['error', 'warning', 'info', 'hint'];
for (const d of diagnostics) {
  console.log(`${severities[d.severity] ?? d.severity}\t${d.code}\t${d.path.join('.')}\t${d.message}`);
}
process.exit(diagnostics.some((d) => d.severity === 0) ? 1 : 0);

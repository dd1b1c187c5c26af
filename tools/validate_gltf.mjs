// Khronos glTF-Validator on one .glb/.gltf: prints the JSON report, exits 1 on errors or warnings.
// Usage: node tools/validate_gltf.mjs FILE [--allow-warnings]
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import validator from 'gltf-validator';

const file = process.argv[2];
const allowWarnings = process.argv.includes('--allow-warnings');
const dir = path.dirname(file);
const data = new Uint8Array(await readFile(file));
const report = await validator.validateBytes(data, {
  uri: path.basename(file),
  maxIssues: 100,
  externalResourceFunction: (uri) => readFile(path.join(dir, decodeURIComponent(uri))).then((b) => new Uint8Array(b)),
});
process.stdout.write(JSON.stringify(report));
const bad = report.issues.numErrors > 0 || (!allowWarnings && report.issues.numWarnings > 0);
process.exit(bad ? 1 : 0);

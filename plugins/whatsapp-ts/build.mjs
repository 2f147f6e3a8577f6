// Builds the connector into a WebAssembly component:
//   node build.mjs <wit folder> <output .wasm>
// 1. compiles src/*.ts with tsc into dist/,
// 2. componentizes dist/whatsapp.js against the `channel` world with componentize-js
//    (its library API: the `jco componentize` command line fails on these machines),
// 3. appends centralino's custom sections, which componentize-js cannot emit: the plugin
//    metadata (name, version, contract) and the declarations in package.json's
//    `centralino.sections` (here the 24 h reply window).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { componentize } from '@bytecodealliance/componentize-js';

const here = dirname(fileURLToPath(import.meta.url));
const [witPath, output] = process.argv.slice(2);
if (!witPath || !output) {
  console.error('usage: node build.mjs <wit folder> <output .wasm>');
  process.exit(2);
}
const pkg = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8'));
const started = Date.now();

console.error('  compiling TypeScript (tsc)');
execFileSync(process.execPath, [join(here, 'node_modules/typescript/bin/tsc'), '-p', here], {
  stdio: 'inherit',
});

console.error(`  componentizing against ${witPath} (world ${pkg.centralino.world})`);
const { component } = await componentize({
  sourcePath: join(here, 'dist', pkg.centralino.entry),
  witPath: resolve(witPath),
  worldName: pkg.centralino.world,
  // Outgoing HTTP goes through the contract's `http` import, never through WASI.
  disableFeatures: ['http', 'fetch-event'],
});

/** Unsigned LEB128, as WebAssembly encodes sizes. */
function leb128(n) {
  const out = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** A custom section (id 0): the name, then the payload. */
function customSection(name, payload) {
  const nameBytes = Buffer.from(name, 'utf8');
  const content = Buffer.concat([Buffer.from(leb128(nameBytes.length)), nameBytes, payload]);
  return Buffer.concat([Buffer.from([0]), Buffer.from(leb128(content.length)), content]);
}

const sections = [
  customSection(
    'centralino-plugin',
    Buffer.from(
      JSON.stringify({ name: pkg.centralino.name, version: pkg.version, contract: pkg.centralino.contract }),
    ),
  ),
];
for (const [name, value] of Object.entries(pkg.centralino.sections ?? {})) {
  sections.push(customSection(name, Buffer.from(JSON.stringify(value))));
}
mkdirSync(dirname(resolve(output)), { recursive: true });
writeFileSync(output, Buffer.concat([Buffer.from(component), ...sections]));
console.error(
  `  ${output}: ${(component.byteLength / 1e6).toFixed(1)} MB in ${((Date.now() - started) / 1000).toFixed(1)} s`,
);

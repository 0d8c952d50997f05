// `npm run demos`: after `npm run build` (the package script runs it first), serves the repository on 127.0.0.1
// (scripts/browser.mjs: the same server the browser tests use) and prints the URL of every page demo, i.e. every
// demos/<name>/index.html. Runs until interrupted.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { serveRepo } from './browser.mjs';

const pages = readdirSync('demos').filter((d) => existsSync(join('demos', d, 'index.html')));
const { origin } = await serveRepo();
console.log(`EdgeKit demos on ${origin} (Ctrl-C stops):`);
for (const d of pages) console.log(`  ${d}: ${origin}/demos/${d}/index.html`);

// Bundle the storefront: web/src/main.js (+ the centrifuge SDK from node_modules) -> dist/app.js,
// and copy the static files of web/ next to it. No CDN at run time: everything is served locally.
//   node demo/storefront/build.mjs [--outdir DIR] [--watch]
import { build, context } from 'esbuild';
import { cpSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? resolve(args[i + 1]) : fallback;
};
const outdir = option('--outdir', join(here, 'dist'));
const web = join(here, 'web');

const copyStatic = () => {
  mkdirSync(outdir, { recursive: true });
  for (const entry of readdirSync(web, { withFileTypes: true })) {
    if (entry.isFile()) cpSync(join(web, entry.name), join(outdir, entry.name));
  }
  writeFileSync(join(outdir, '.build-stamp'), new Date().toISOString() + '\n');
};

const options = {
  entryPoints: [join(web, 'src', 'main.js')],
  bundle: true,
  format: 'esm',
  target: ['es2022'],
  outfile: join(outdir, 'app.js'),
  sourcemap: true,
  minify: !flag('--dev'),
  legalComments: 'linked',
  logLevel: 'warning',
};

if (flag('--watch')) {
  const ctx = await context({
    ...options,
    plugins: [{ name: 'copy-static', setup(b) { b.onEnd(() => { copyStatic(); console.log('storefront: rebuilt'); }); } }],
  });
  await ctx.watch();
  console.log(`storefront: watching ${web}`);
} else {
  await build(options);
  copyStatic();
  console.log(`storefront: bundle written to ${outdir}`);
}

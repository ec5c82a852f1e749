// Writes NAME.gz and NAME.br next to every compressible file of dist/ (the
// C server sends the one matching Accept-Encoding). Best compression levels:
// this runs once per build, the files are served many times. Prints the
// gzipped size of each JavaScript file, the number the bundle budget is
// about.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const EXT = /\.(js|css|html|svg|json|txt|map)$/;

async function* walk(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.isFile() && EXT.test(entry.name)) yield path;
  }
}

let count = 0;
for await (const path of walk(dist)) {
  const data = await readFile(path);
  const gz = gzipSync(data, { level: 9 });
  const br = brotliCompressSync(data, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
      [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
    },
  });
  await writeFile(path + '.gz', gz);
  await writeFile(path + '.br', br);
  count++;
  console.log(
    `${relative(dist, path).padEnd(40)} ${String(data.length).padStart(8)} B  gzip ${String(gz.length).padStart(7)} B  br ${String(br.length).padStart(7)} B`,
  );
}
console.log(`compress: ${count} files`);

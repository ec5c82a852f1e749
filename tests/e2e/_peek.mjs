import { startFake, startServer, ROOT } from './servers.mjs';
import { launch, open, startSession, addPerson, PHONE } from './lib.mjs';
import { join } from 'node:path';
const fake = await startFake({ markup: 'react2025' });
const fp = await startServer(fake);
const b = await launch();
try {
  const { page } = await open(b, fp.url, { viewport: PHONE });
  await startSession(page);
  await addPerson(page, 'alice', 'alice');
  await addPerson(page, 'blocked_x', 'blocked_x');
  await page.getByText('No Letterboxd profile to link? Upload an export instead').click();
  await page.getByLabel('Their name').fill('Dana');
  await page.getByLabel('Letterboxd export file').setInputFiles(join(ROOT, 'tests/data/upload_report.csv'));
  await page.getByText('3 films matched').waitFor();
  await page.waitForTimeout(500);
  await page.screenshot({ path: '/tmp/w2/peek.png', fullPage: true });
} finally { await b.close(); await fp.stop(); await fake.stop(); }

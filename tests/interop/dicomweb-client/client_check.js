// Drives a DICOMweb server with the npm dicomweb-client library, as a third-party viewer or
// tool would: STOW-RS the given files, QIDO-RS the study, its series and instances, WADO-RS
// the study's metadata and instances. Prints one JSON object of what it saw; exits 1 on any
// error. Usage: node client_check.js BASE_URL FILE...
'use strict';
global.XMLHttpRequest = require('xhr2');
const fs = require('fs');
const { api } = require('dicomweb-client');

function arrayBufferOf(path) {
  const bytes = fs.readFileSync(path);
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
}

function first(dataset, tag) {
  const element = dataset[tag];
  return element && element.Value ? element.Value[0] : undefined;
}

async function main() {
  const [url, ...files] = process.argv.slice(2);
  const client = new api.DICOMwebClient({ url });
  await client.storeInstances({ datasets: files.map(arrayBufferOf) });

  const studies = await client.searchForStudies({ queryParams: { ModalitiesInStudy: 'CT' } });
  const studyInstanceUID = first(studies[0], '0020000D');
  const series = await client.searchForSeries({ studyInstanceUID });
  const seriesInstanceUID = first(series[0], '0020000E');
  const instances = await client.searchForInstances({ studyInstanceUID, seriesInstanceUID });
  const metadata = await client.retrieveStudyMetadata({ studyInstanceUID });
  const retrieved = await client.retrieveStudy({ studyInstanceUID });
  const one = await client.retrieveInstance({
    studyInstanceUID,
    seriesInstanceUID,
    sopInstanceUID: first(instances[0], '00080018'),
  });
  const limited = await client.searchForStudies({ queryParams: { limit: 1, offset: 0 } });
  console.log(JSON.stringify({
    studies: studies.length,
    study: studyInstanceUID,
    studyInstances: first(studies[0], '00201208'),
    series: series.map((s) => first(s, '0020000E')),
    instances: instances.map((i) => first(i, '00080018')),
    metadata: metadata.map((m) => first(m, '00080018')),
    retrievedBytes: retrieved.map((b) => b.byteLength),
    oneBytes: one.byteLength,
    limited: limited.length,
  }));
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : String(error));
  process.exit(1);
});

// tmp-env: counts this instance's invocations in a scratch file under /tmp and echoes the
// GREETING variable set in function.yaml.
//
// /tmp is the instance's scratch space: it survives between invocations of one instance and
// is gone when the instance is, so the count restarts at 1 after a cold start and differs
// between concurrent instances. State that must last belongs in a store, not here.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

// os.tmpdir() is /tmp on nimbus (TMPDIR is not set); the tests point TMPDIR elsewhere.
const TMP_FILE = path.join(os.tmpdir(), 'tmp-env-count');

exports.handler = async () => {
  let count = 0;
  try {
    count = parseInt(fs.readFileSync(TMP_FILE, 'utf8'), 10) || 0;
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  count += 1;
  fs.writeFileSync(TMP_FILE, String(count));
  return { greeting: process.env.GREETING || 'hello', count, tmp_file: TMP_FILE };
};

// Reads a Parquet file with DuckDB and prints, as one JSON object on stdout,
// its DESCRIBE, all of its rows ordered by the column row, and the results
// of any further queries, in which the word FILE stands for the file.
// A file whose name ends in .csv is read with read_csv(FILE, header = true)
// instead, its rows in file order, and FILE_TEXT in a query stands for
// the file read with every column as VARCHAR.
//
// Usage: node duckdb_describe.mjs NODE_DIR FILE.parquet|FILE.csv [QUERY...]
// where NODE_DIR holds node_modules/@duckdb/node-api (installed with
// `npm install --no-save @duckdb/node-api` in NODE_DIR).
import { createRequire } from 'node:module';
import path from 'node:path';

const [nodeDir, file, ...queries] = process.argv.slice(2);
if (!nodeDir || !file) {
  console.error('usage: node duckdb_describe.mjs NODE_DIR FILE.parquet [QUERY...]');
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(nodeDir), 'package.json'));
const { DuckDBInstance } = require('@duckdb/node-api');

const quoted = `'${file.replaceAll("'", "''")}'`;
const csv = file.toLowerCase().endsWith('.csv');
const source = csv ? `read_csv(${quoted}, header = true)` : `read_parquet(${quoted})`;
const text = `read_csv(${quoted}, header = true, all_varchar = true)`;
const instance = await DuckDBInstance.create(':memory:');
const conn = await instance.connect();
const run = async (sql) =>
  (await conn.runAndReadAll(sql.replace(/FILE(_TEXT)?/g, (m) => (m === 'FILE' ? source : text)))).getRowObjectsJson();

const out = {
  describe: (await run('DESCRIBE SELECT * FROM FILE')).map((r) => ({ name: r.column_name, type: r.column_type })),
  rows: await run(csv ? 'SELECT * FROM FILE' : 'SELECT * FROM FILE ORDER BY "row"'),
  queries: [],
};
for (const q of queries) {
  out.queries.push(await run(q));
}
process.stdout.write(JSON.stringify(out) + '\n');

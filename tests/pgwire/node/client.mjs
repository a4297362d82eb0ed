// node-postgres (npm's pg) against `canopy serve --pg-listen`: the extended protocol with
// text parameters, unnamed and named (prepared) statements, rows as arrays, the types it
// parses, a denial, and an error that leaves the connection usable.
//
//   node client.mjs PORT USER TOKEN OTHER_USER OTHER_TOKEN
//
// Prints one line per check, "ok <what>" or "FAIL <what>: <why>", and exits 1 when any
// failed. OTHER_USER may not read crm.customers.
import pg from 'pg';

const [port, user, token, otherUser, otherToken] = process.argv.slice(2);
let failed = 0;
function check(what, condition, why) {
  console.log((condition ? 'ok ' : 'FAIL ') + what + (condition ? '' : ': ' + JSON.stringify(why)));
  if (!condition) failed++;
}

function connect(name, password) {
  return new pg.Client({host: '127.0.0.1', port: Number(port), user: name, password,
                        database: 'govtest', connectionTimeoutMillis: 10000});
}

const client = connect(user, token);
await client.connect();
try {
  const eu = await client.query(
      'select id, email, region from crm.customers where region = $1 order by id', ['EU']);
  check('a parameterised query', eu.rows.map((r) => Number(r.id)).join() === '1,3', eu.rows);
  check('masked values, no source value',
        eu.rows.every((r) => r.email.startsWith('h_') && !r.email.includes('@')), eu.rows);
  check('the fields are named', eu.fields.map((f) => f.name).join() === 'id,email,region',
        eu.fields);

  for (let run = 1; run <= 3; run++) {
    const named = await client.query({name: 'by_region', rowMode: 'array',
                                      text: 'select count(*) as n from crm.customers where region = $1',
                                      values: [run === 2 ? 'US' : 'EU']});
    check('a named prepared statement, run ' + run, named.rows.length === 1 && named.rows[0].length === 1,
          named.rows);
  }

  const typed = await client.query(
      "select 1::integer as i, 2.50::decimal(5,2) as d, date '2024-07-01' as day, true as b, " +
      "null::varchar as nothing");
  const row = typed.rows[0];
  check('types: integer, numeric as text, date, boolean, null',
        row.i === 1 && row.d === '2.50' && row.day instanceof Date &&
            row.day.getFullYear() === 2024 && row.b === true && row.nothing === null,
        row);

  try {
    await client.query('selec 1');
    check('a syntax error is 42601', false, 'it ran');
  } catch (e) {
    check('a syntax error is 42601', e.code === '42601', e.code + ' ' + e.message);
  }
  const after = await client.query('select 41 + $1::integer as answer', [1]);
  check('the connection goes on after an error', after.rows[0].answer === 42, after.rows);
} finally {
  await client.end();
}

const other = connect(otherUser, otherToken);
await other.connect();
try {
  await other.query('select email from crm.customers');
  check('a denied read is refused with 42501', false, 'it ran');
} catch (e) {
  check('a denied read is refused with 42501', e.code === '42501', e.code + ' ' + e.message);
} finally {
  await other.end();
}

const wrong = connect(user, token + 'x');
try {
  await wrong.connect();
  check('a wrong token is refused', false, 'it connected');
  await wrong.end();
} catch (e) {
  check('a wrong token is refused with 28P01', e.code === '28P01', e.code + ' ' + e.message);
}
process.exit(failed === 0 ? 0 : 1);

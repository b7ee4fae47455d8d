// ct-analyze export: its options and help; journals → Parquet or NDJSON files (export/, loaded only when it runs).
import { Option } from 'commander';
import { Exit } from '../../common/errors.js';
import type { Collapse } from '../core/flows.js';
import { makeWindow } from '../core/slice.js';
import type { ExportFormat, ExportWhat } from '../export/export.js';
import { collapseOpt, NAME, type Subcommand } from './options.js';

const EXPORT_HELP = `
Layout (Hive partitions; docs/export.md has the schema and recipes):
  DIR/schema.json                                          export schema version 1, the columns
  DIR/events/host=HOST/date=YYYY-MM-DD/part-TAG-N.parquet  one row per event, in journal order
  DIR/flows/host=HOST/part-TAG-N.parquet                   one row per flow of HOST's journals
TAG is the first 16 hex digits of the journal's SHA-256 (flows: of its journals, collapsing and
window), so the exports of a fleet share one DIR without two files of one name. An existing
file is refused unless --force; a failed export leaves no file under its final name.

Examples:
  $ ${NAME} export -o export fw1.mpk fw2.mpk
      every event of both journals as Parquet under export/events/
  $ ${NAME} export --what both --format ndjson -o export journal.mpk
      events and flows as NDJSON (ClickHouse JSONEachRow, jq)
  $ duckdb -c "SELECT proto, count(*) FROM read_parquet('export/events/**/*.parquet') GROUP BY 1"

Exit status: 0 written, 1 unreadable or damaged journal, existing file, write failure,
2 usage error, 3 journal too new.`;

interface ExportOptions {
  output: string;
  what: ExportWhat;
  format: ExportFormat;
  collapse: Collapse;
  since?: string;
  until?: string;
  force?: boolean;
}

export const exportCommand: Subcommand = {
  usage: 'export -o <dir> [options] <journal...>',
  register(program, ctx) {
    program
      .command('export')
      .description(
        'events and flows as Parquet or NDJSON files for DuckDB, ClickHouse, Spark, pandas',
      )
      .argument('<journal...>', 'journal files (.mpk) written by ct-record')
      .requiredOption('-o, --output <dir>', 'the directory to write into (made if missing)')
      .addOption(
        new Option('--what <what>', 'what to export')
          .choices(['events', 'flows', 'both'])
          .default('events'),
      )
      .addOption(
        new Option('--format <format>', 'file format')
          .choices(['parquet', 'ndjson'])
          .default('parquet'),
      )
      .addOption(collapseOpt())
      .option('--since <time>', 'only events at or after TIME (as ct-analyze --since)')
      .option('--until <time>', 'only events at or before TIME (as ct-analyze --until)')
      .option('--force', 'replace files of an earlier export of the same journals')
      .addHelpText('after', EXPORT_HELP)
      .action(async (journals: string[], o: ExportOptions) => {
        const sliced = o.since !== undefined || o.until !== undefined;
        const { runExport } = await import('../export/export.js');
        const result = await runExport(
          {
            journals,
            what: o.what,
            format: o.format,
            collapse: o.collapse,
            output: o.output,
            force: o.force === true,
            ...(sliced ? { window: makeWindow(o.since, o.until, Date.now() * 1000) } : {}),
          },
          { warn: ctx.warn, note: ctx.note },
        );
        ctx.note(
          `exported ${result.events} events and ${result.flows} flows into ${result.files.length} files under ${o.output}`,
        );
        ctx.exit(Exit.OK);
      });
  },
};

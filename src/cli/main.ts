import { Command, CommanderError } from 'commander';
import { AdminError } from '../store/admin/errors.ts';
import { MoneyFormatError } from '../money/money.ts';
import { ConfigError } from '../config/env.ts';
import { terminalText } from '../store/admin/cells.ts';
import { CliRuntime, type CliOptions } from './runtime.ts';
import { registerSeries } from './commands/series.ts';
import { registerCards } from './commands/cards.ts';
import { registerDids } from './commands/dids.ts';
import { registerRates } from './commands/rates.ts';
import { registerCdrs } from './commands/cdrs.ts';
import { registerSystem } from './commands/system.ts';
import { registerTax } from './commands/tax.ts';
import { registerCalls } from './commands/calls.ts';
import { registerOperators } from './commands/operators.ts';
import { registerDevices } from './commands/devices.ts';
import { registerVouchers } from './commands/vouchers.ts';
import { registerCarriers } from './commands/carriers.ts';
import { registerResellers } from './commands/resellers.ts';
import { parseScoped } from './scope.ts';

export type { CliOptions } from './runtime.ts';

/** Exit codes: 0 done, 1 the operation failed (bad input, unknown thing, conflict), 2 bad command line. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export function buildProgram(rt: CliRuntime): Command {
  const program = new Command('ccard')
    .description('ccard: prepaid calling cards for FreeSWITCH')
    .showSuggestionAfterError()
    .configureOutput({
      writeOut: (s) => rt.stdout.write(s),
      writeErr: (s) => rt.stderr.write(s),
      outputError: (s, write) => write(`ccard: ${s.replace(/^error: /, 'error: ')}`),
    });
  registerSeries(program, rt);
  registerCards(program, rt);
  registerDids(program, rt);
  registerRates(program, rt);
  registerTax(program, rt);
  registerCdrs(program, rt);
  registerCalls(program, rt);
  registerCarriers(program, rt);
  registerResellers(program, rt);
  registerSystem(program, rt);
  registerOperators(program, rt);
  registerDevices(program, rt);
  registerVouchers(program, rt);
  // Every command throws instead of exiting the process, so runCli can return the code (and tests run in-process).
  const override = (cmd: Command) => {
    cmd.exitOverride();
    cmd.commands.forEach(override);
  };
  override(program);
  return program;
}

/**
 * Runs one ccard command line (argv as process.argv: node, script, args...). Returns the exit code; never calls
 * process.exit. Errors are printed as one line on stderr.
 */
export async function runCli(argv: readonly string[], opts: CliOptions = {}): Promise<number> {
  const rt = new CliRuntime(opts);
  const program = buildProgram(rt);
  try {
    await parseScoped(program, rt, argv);
    return EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed its message (or the help).
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
        return EXIT_OK;
      }
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    rt.stderr.write(`ccard: error: ${describe(err)}\n`);
    return EXIT_FAILED;
  } finally {
    await rt.close();
  }
}

function describe(err: unknown): string {
  if (err instanceof AdminError || err instanceof MoneyFormatError) return oneLine(err.message);
  if (err instanceof ConfigError) return oneLine(err.message.replace(/^invalid configuration:\s*/, 'invalid configuration: '));
  if (err instanceof Error) {
    const code = (err as { code?: string }).code;
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND') return oneLine(`cannot reach the database: ${err.message}`);
    return oneLine(err.message);
  }
  return oneLine(String(err));
}

const oneLine = (s: string) => terminalText(s.replace(/\s*\n\s*/g, '; '));

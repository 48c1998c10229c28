import { runCli } from './cli/main.ts';

process.exitCode = await runCli(process.argv);

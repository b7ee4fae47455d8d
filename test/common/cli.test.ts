// How an error message reaches the terminal: its own lines kept, each escaped and indented after the first.
import t from 'tap';
import { messageLines } from '../../common/cli.js';

t.test(
  "error messages: nft's lines stay lines, with the caret under its column; a file's text cannot start a line",
  async (t) => {
    const nft = [
      'nft refused the ruleset r.nft:',
      'r.nft:4:14-19: Error: No such file or directory',
      '\tdelete table filter',
      '\t             ^^^^^^',
      'ct-analyze: verified OK\x1b[2J',
    ].join('\n');
    t.equal(
      messageLines(nft),
      [
        'nft refused the ruleset r.nft:',
        '  r.nft:4:14-19: Error: No such file or directory',
        '      delete table filter',
        '                   ^^^^^^',
        '  ct-analyze: verified OK\\x1b[2J',
      ].join('\n'),
    );
    t.equal(messageLines('one line \u202e'), 'one line \\u202e', 'one line stays one, escaped');
  },
);

// The columns the text report can add to a flow line (--show): named apart from the report so option parsing loads nothing heavy.

/** The columns --show accepts, in the order they are printed. */
export const SHOW_COLUMNS = ['direction', 'nat', 'hosts'] as const;

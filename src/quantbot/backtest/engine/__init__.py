"""The numeric core, arrays in and arrays out: alert windows, price paths, features,
policies and their simulation, summaries, error rows."""

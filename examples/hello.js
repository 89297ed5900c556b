// Greets `name` (default `stranger`): OpenWhisk's hello world.
function main(params) {
  const name = params.name || 'stranger';
  return { greeting: `Hello, ${name}!` };
}

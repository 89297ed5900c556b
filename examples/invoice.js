// Totals an order: line items, discounts and tax, plus a printable receipt.
// Params: {"customer": "Ada", "items": [{"sku": "A1", "qty": 2, "price": 9.5}], "coupon": "TENOFF"}
const COUPONS = { TENOFF: 0.10, HALF: 0.50 };
const TAX_RATE = 0.2;

function money(n) {
  return (Math.round(n * 100) / 100).toFixed(2);
}

function main(params) {
  const items = Array.isArray(params.items) ? params.items : [];
  if (items.length === 0) {
    return { error: 'an order needs at least one item' };
  }
  const lines = items.map((item, i) => {
    const qty = Number(item.qty || 1);
    const price = Number(item.price || 0);
    if (!Number.isFinite(qty) || !Number.isFinite(price)) {
      throw new Error(`item ${i} has a bad qty or price`);
    }
    return { sku: String(item.sku || `item-${i}`), qty, price, total: qty * price };
  });
  const subtotal = lines.reduce((sum, l) => sum + l.total, 0);
  const rate = COUPONS[String(params.coupon || '').toUpperCase()] || 0;
  const discount = subtotal * rate;
  const tax = (subtotal - discount) * TAX_RATE;
  const total = subtotal - discount + tax;
  const receipt = [`Receipt for ${params.customer || 'guest'}`]
    .concat(lines.map(l => `${l.sku.padEnd(8)} ${String(l.qty).padStart(3)} x ${money(l.price).padStart(8)} = ${money(l.total).padStart(9)}`))
    .concat([`subtotal ${money(subtotal)}`, `discount ${money(discount)}`, `tax ${money(tax)}`, `total ${money(total)}`])
    .join('\n');
  console.log(`invoice for ${lines.length} line(s), total ${money(total)}`);
  return { customer: params.customer || 'guest', lines, subtotal: money(subtotal), discount: money(discount), tax: money(tax), total: money(total), receipt };
}

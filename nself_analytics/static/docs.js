/* The API explorer: Swagger UI on this instance's own openapi.json (no outside requests). */

/* Every operation rendered at once. Swagger UI 5.35 switches its operations list to a virtualized one (only the
   rows in view exist) from 150 rows (tags + operations) on; this document has more, and the virtualized list
   showed the first tag only until scrolled (no tag sections, text search of the page finding nothing below).
   This is Swagger UI's own plain branch of that component. */
function PlainOperationsPlugin(system) {
  const h = system.React.createElement;
  function Operations({ specSelectors, getComponent, oas3Selectors, layoutSelectors, layoutActions, getConfigs }) {
    const tagged = specSelectors.taggedOperations();
    const methods = specSelectors.validOperationMethods();
    if (tagged.size === 0) return h('h3', null, ' No operations defined in spec!');
    const OperationContainer = getComponent('OperationContainer', true);
    const OperationTag = getComponent('OperationTag');
    return h('div', null, tagged.map((tagObj, tag) => h(OperationTag, {
      key: 'operation-' + tag, tagObj, tag, oas3Selectors, layoutSelectors, layoutActions, getConfigs, getComponent,
      specUrl: specSelectors.url()
    }, h('div', { className: 'operation-tag-content' }, tagObj.get('operations').map((op) => {
      const path = op.get('path');
      const method = op.get('method');
      return methods.indexOf(method) === -1 ? null
        : h(OperationContainer, { key: `${path}-${method}`, specPath: op.get('specPath'), op, path, method, tag });
    }).toArray()))).valueSeq().toArray());
  }
  return { components: { operations: Operations } };
}

window.ui = SwaggerUIBundle({
  url: 'openapi.json',
  dom_id: '#ui',
  deepLinking: true,
  tryItOutEnabled: true,
  persistAuthorization: false,
  validatorUrl: null,
  displayRequestDuration: true,
  plugins: [PlainOperationsPlugin]
});

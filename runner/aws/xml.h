/*
 * The little XML that S3 answers with: an element's text, found by name.
 * Not a parser of XML in general: S3's answers are flat enough that the
 * n-th <Name>...</Name> is the n-th value (ListObjectsV2's <Key>s, an
 * error's <Code> and <Message>). Untrusted input: bounded, never past len.
 */
#ifndef OTR_AWS_XML_H
#define OTR_AWS_XML_H

#include "util/buf.h"

#include <stddef.h>

/* The text of the first <name>...</name> at or after *pos in body[0, len),
 * with the five predefined entities and numeric character references
 * decoded; *pos moves past its end tag. NULL when there is none, when it is
 * not well formed, or without memory (*pos unchanged). */
OTR_MUST_USE char *otr_xml_next(const char *body, size_t len, size_t *pos, const char *name);

/* The same from the start of body. */
OTR_MUST_USE char *otr_xml_first(const char *body, size_t len, const char *name);

#endif

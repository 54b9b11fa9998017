#include "sl_utf8.h" /* the old name, kept only until firmware/sluiced.c includes sl_utf8.h */

"""Operations over whole run trees and the catalog together: verify, gc, archive/restore,
describing one run."""
